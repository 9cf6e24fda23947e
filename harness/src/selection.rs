//! Which checks a run reports: `--check PATTERN` and `--skip PATTERN` on
//! `scenario/check`, as `cargo test --test e2e -- PATTERN` selects trials: a
//! pattern without `*`, `?` or `[` matches as a substring, one with them as a
//! glob. Checks that share state still run with their whole group (see
//! `hazard`), so a selection never changes a verdict, only what is reported.

use globset::{Glob, GlobMatcher};

#[derive(Debug, Clone, Default)]
pub struct Selection {
    only: Vec<Pattern>,
    skip: Vec<Pattern>,
}

#[derive(Debug, Clone)]
enum Pattern {
    Substring(String),
    Glob(GlobMatcher),
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        if text.contains(['*', '?', '[']) {
            Glob::new(text)
                .map(|g| Pattern::Glob(g.compile_matcher()))
                .map_err(|e| format!("`{text}` is not a glob: {e}"))
        } else {
            Ok(Pattern::Substring(text.to_string()))
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Substring(s) => name.contains(s.as_str()),
            Pattern::Glob(g) => g.is_match(name),
        }
    }
}

impl Selection {
    pub(crate) fn new(only: &[String], skip: &[String]) -> Result<Selection, String> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Selection {
            only: parse(only)?,
            skip: parse(skip)?,
        })
    }

    /// Whether `scenario/check` is reported.
    pub(crate) fn includes(&self, scenario: &str, check: &str) -> bool {
        let name = format!("{scenario}/{check}");
        (self.only.is_empty() || self.only.iter().any(|p| p.matches(&name)))
            && !self.skip.iter().any(|p| p.matches(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substrings_and_globs_like_the_test_binary() {
        let s = Selection::new(&["good".into()], &[]).expect("patterns");
        assert!(s.includes("openwebui-ingress-mtls", "good-cert-200"));
        assert!(!s.includes("openwebui-ingress-mtls", "no-cert-400"));
        let g =
            Selection::new(&["openwebui-*/*-400".into()], &["*expired*".into()]).expect("patterns");
        assert!(g.includes("openwebui-ingress-mtls", "no-cert-400"));
        assert!(!g.includes("openwebui-ingress-mtls", "expired-400"));
        assert!(!g.includes("aigw-egress-mtls", "chat-400"));
        assert!(Selection::default().includes("any", "thing"));
        assert!(Selection::new(&["[".into()], &[]).is_err());
    }
}
