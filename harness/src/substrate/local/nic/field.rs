//! Kubernetes field errors and name checks, in the words NIC's validators print
//! them (`k8s.io/apimachinery` v0.36: `util/validation/field`, `util/validation`),
//! and NIC's own value parsers (`internal/configs/parsing_helpers.go`).

use std::sync::OnceLock;

/// `field.Invalid(path, value, detail)` for a string value (Go prints it with `%q`).
pub(crate) fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", go_quote(value))
}

/// `field.Invalid` for a number.
pub(crate) fn invalid_number(path: &str, value: i64, detail: &str) -> String {
    format!("{path}: Invalid value: {value}: {detail}")
}

/// `field.Required(path, detail)`.
pub(crate) fn required(path: &str, detail: &str) -> String {
    with_detail(format!("{path}: Required value"), detail)
}

/// `field.Forbidden(path, detail)`.
pub(crate) fn forbidden(path: &str, detail: &str) -> String {
    with_detail(format!("{path}: Forbidden"), detail)
}

/// `field.Duplicate(path, value)`.
pub(crate) fn duplicate(path: &str, value: &str) -> String {
    format!("{path}: Duplicate value: {}", go_quote(value))
}

/// `field.NotFound(path, value)`.
pub(crate) fn not_found(path: &str, value: &str) -> String {
    format!("{path}: Not found: {}", go_quote(value))
}

/// `field.TooMany(path, actual, max)`: "item" when at most one is allowed.
pub(crate) fn too_many(path: &str, actual: usize, max: usize) -> String {
    let items = if max == 1 { "item" } else { "items" };
    format!("{path}: Too many: {actual}: must have at most {max} {items}")
}

fn with_detail(mut body: String, detail: &str) -> String {
    if !detail.is_empty() {
        body.push_str(": ");
        body.push_str(detail);
    }
    body
}

/// `ErrorList.ToAggregate().Error()`: identical messages once, one error
/// bare, several as `[a, b]`.
pub(crate) fn aggregate(errors: Vec<String>) -> Result<(), String> {
    let mut unique: Vec<String> = Vec::new();
    for e in errors {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.len() {
        0 => Ok(()),
        1 => Err(unique.remove(0)),
        _ => Err(format!("[{}]", unique.join(", "))),
    }
}

/// Go's `%q` for the printable ASCII NIC's tests use; other characters escaped as Go does.
pub(crate) fn go_quote(value: &str) -> String {
    super::render::go_quote(value)
}

/// `validation.RegexError`: the message, its examples, then the pattern.
fn regex_error(msg: &str, pattern: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{pattern}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{pattern}')"));
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn full_match(pattern: &'static str, cell: &'static OnceLock<regex::Regex>, value: &str) -> bool {
    cell.get_or_init(|| regex::Regex::new(&format!("^(?:{pattern})$")).expect("valid pattern"))
        .is_match(value)
}

const DNS1123_LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const WILDCARD_DNS1123_SUBDOMAIN: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

/// `validation.IsDNS1123Subdomain`.
pub(crate) fn dns1123_subdomain(value: &str) -> Vec<String> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !full_match(DNS1123_SUBDOMAIN, &RE, value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
             and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN,
            &["example.com"],
        ));
    }
    errs
}

/// `validation.IsDNS1123Label`.
pub(crate) fn dns1123_label(value: &str) -> Vec<String> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !full_match(DNS1123_LABEL, &RE, value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
             and must start and end with an alphanumeric character",
            DNS1123_LABEL,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// `validation.IsDNS1035Label`.
pub(crate) fn dns1035_label(value: &str) -> Vec<String> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !full_match(DNS1035_LABEL, &RE, value) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
             start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `validation.IsWildcardDNS1123Subdomain`.
pub(crate) fn wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !full_match(WILDCARD_DNS1123_SUBDOMAIN, &RE, value) {
        errs.push(regex_error(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, \
             which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
            WILDCARD_DNS1123_SUBDOMAIN,
            &["*.example.com"],
        ));
    }
    errs
}

/// `validation.IsValidPortNum`.
/// The path checks NIC makes in both its Ingress and its VirtualServer
/// validation: no protocol-relative URI, no `..` segment.
pub(crate) fn unsafe_path(path: &str, at: &str) -> Option<String> {
    if path.starts_with("//") {
        return Some(invalid(
            at,
            path,
            "protocol-relative URIs not allowed, must not start with '//'",
        ));
    }
    if path.split(['/', '\\']).any(|segment| segment == "..") {
        return Some(invalid(
            at,
            path,
            "path traversal not allowed, path must not contain '..' segments",
        ));
    }
    None
}

pub(crate) fn port_number(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".into()]
    }
}

/// Each message of a name check as `field.Invalid(path, value, msg)`.
pub(crate) fn invalid_each(path: &str, value: &str, messages: Vec<String>) -> Vec<String> {
    messages
        .into_iter()
        .map(|m| invalid(path, value, &m))
        .collect()
}

/// NIC's `ParseTime`: nginx time units in order, optional spaces between them,
/// a bare number of seconds gets its `s`; the units are joined without spaces.
pub(crate) fn parse_time(value: &str) -> Option<String> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"^(\d+y)??\s*(\d+M)??\s*(\d+w)??\s*(\d+d)??\s*(\d+h)??\s*(\d+m)??\s*(\d+s?)??\s*(\d+ms)??$",
        )
        .expect("valid pattern")
    });
    if value.trim().is_empty() {
        return None;
    }
    let caps = re.captures(value)?;
    let part = |i: usize| caps.get(i).map_or("", |m| m.as_str());
    let mut secs = part(7).to_string();
    if !secs.is_empty() && !secs.ends_with('s') {
        secs.push('s');
    }
    Some(format!(
        "{}{}{}{}{}{}{secs}{}",
        part(1),
        part(2),
        part(3),
        part(4),
        part(5),
        part(6),
        part(8)
    ))
}

/// NIC's `ParseOffset`: `\d+[kKmMgG]?`, spaces trimmed.
pub(crate) fn parse_offset(value: &str) -> Option<&str> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let v = value.trim();
    full_match(r"\d+[kKmMgG]?", &RE, v).then_some(v)
}

/// NIC's `ParseSize`: `\d+[kKmM]?`, spaces trimmed.
pub(crate) fn parse_size(value: &str) -> Option<&str> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let v = value.trim();
    full_match(r"\d+[kKmM]?", &RE, v).then_some(v)
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// NIC's `ParseLBMethod` (OSS): `round_robin` is nginx's default (no directive).
pub(crate) fn parse_lb_method(method: &str) -> Result<String, String> {
    let method = method.trim();
    let invalid = || {
        Err(format!(
            "invalid load balancing method: {}",
            go_quote(method)
        ))
    };
    if method == "round_robin" {
        return Ok(String::new());
    }
    if method.starts_with("hash") {
        let words: Vec<&str> = method.split(' ').collect();
        let ok = words[0] == "hash"
            && (words.len() == 2 || (words.len() == 3 && words[2] == "consistent"));
        return if ok {
            Ok(method.to_string())
        } else {
            invalid()
        };
    }
    match method {
        "least_conn" | "ip_hash" | "random" | "random two" | "random two least_conn" => {
            Ok(method.to_string())
        }
        _ => invalid(),
    }
}

#[cfg(test)]
mod tests {
    //! NIC's own tables: `internal/configs/parsing_helpers_test.go`.
    use super::*;

    /// `TestParseTime`.
    #[test]
    fn parse_time_cases() {
        for (input, want) in [
            ("1h30m 5 100ms", "1h30m5s100ms"),
            ("10ms", "10ms"),
            ("1", "1s"),
            ("5m 30s", "5m30s"),
            ("1s", "1s"),
            ("100m", "100m"),
            ("5w", "5w"),
            ("15m", "15m"),
            ("11M", "11M"),
            ("3h", "3h"),
            ("100y", "100y"),
            ("600", "600s"),
        ] {
            assert_eq!(parse_time(input).as_deref(), Some(want), "{input:?}");
        }
        for input in [
            "5s 5s", "ss", "rM", "m0m", "s1s", "-5s", "", "1L", "11 11", " ", "   ",
        ] {
            assert_eq!(parse_time(input), None, "{input:?}");
        }
    }

    /// `TestParseOffset`.
    #[test]
    fn parse_offset_cases() {
        for input in ["1", "2k", "2K", "3m", "3M", "4g", "4G"] {
            assert_eq!(parse_offset(input), Some(input));
        }
        for input in ["-1", "", "blah"] {
            assert_eq!(parse_offset(input), None, "{input:?}");
        }
    }

    /// `TestParseSize`.
    #[test]
    fn parse_size_cases() {
        for input in ["1", "2k", "2K", "3m", "3M"] {
            assert_eq!(parse_size(input), Some(input));
        }
        for input in ["-1", "", "blah", "4g", "4G"] {
            assert_eq!(parse_size(input), None, "{input:?}");
        }
    }

    /// `TestParseBool`.
    #[test]
    fn parse_bool_cases() {
        for (input, want) in [("0", false), ("1", true), ("true", true), ("false", false)] {
            assert_eq!(parse_bool(input), Some(want));
        }
        for input in ["", "blablah", "-100", "-1"] {
            assert_eq!(parse_bool(input), None, "{input:?}");
        }
    }

    /// `TestParseLBMethod`.
    #[test]
    fn parse_lb_method_cases() {
        for (input, want) in [
            ("least_conn", "least_conn"),
            ("round_robin", ""),
            ("ip_hash", "ip_hash"),
            ("random", "random"),
            ("random two", "random two"),
            ("random two least_conn", "random two least_conn"),
            ("hash $request_id", "hash $request_id"),
            ("hash $request_id consistent", "hash $request_id consistent"),
        ] {
            assert_eq!(parse_lb_method(input).as_deref(), Ok(want), "{input:?}");
        }
        for input in [
            "",
            "blabla",
            "least_time header",
            "hash123",
            "hash $request_id conwrongspelling",
            "random one",
            "random two least_time=header",
            "random two least_time=last_byte",
            "random two ip_hash",
        ] {
            assert!(parse_lb_method(input).is_err(), "{input:?}");
        }
        assert_eq!(
            parse_lb_method("blabla"),
            Err("invalid load balancing method: \"blabla\"".to_string())
        );
    }

    #[test]
    fn go_field_error_wording() {
        assert!(dns1123_label("-a")[0].contains("(e.g. 'my-name',  or '123-abc', regex used"));
        assert_eq!(
            too_many("spec.rules", 2, 1),
            "spec.rules: Too many: 2: must have at most 1 item"
        );
        assert_eq!(
            too_many("spec.rules[0].http.paths", 1, 0),
            "spec.rules[0].http.paths: Too many: 1: must have at most 0 items"
        );
        assert_eq!(
            aggregate(vec!["a".into(), "b".into(), "a".into()]),
            Err("[a, b]".into())
        );
    }
}
