//! The command line: what each command takes, and the validation of the
//! options, shared by the binary and the test suite (which builds the same
//! options from its environment).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::mock::ServeArgs;
use crate::substrate::cluster::{self, ClusterOptions, Mode};

#[derive(Parser)]
#[command(
    name = "mtls-e2e",
    version,
    about = "End-to-end tests for mTLS chains in front of AI inference"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More detail on stderr: -v what the harness does, -vv also the libraries
    /// (`RUST_LOG`, when set, decides instead).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only the results and errors (no progress lines).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run scenarios and their checks (default: every scenario under ./scenarios).
    Run(RunArgs),
    /// List scenarios and their checks.
    List { dirs: Vec<PathBuf> },
    /// Print what a run would do, without doing it. Local: objects, certificates,
    /// steps, states, nginx.conf. kind/existing: every command, download and manifest.
    Plan {
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        substrate: SubstrateArgs,
    },
    /// Bring one scenario up and keep it running until Ctrl-C, printing how to
    /// reproduce each check by hand.
    Up {
        dir: PathBuf,
        /// Bring it up with this mutation of the scenario applied, to look at
        /// what the checks see when the chain is broken that way.
        #[arg(long, value_name = "NAME")]
        mutation: Option<String>,
        #[command(flatten)]
        substrate: SubstrateArgs,
    },
    /// Find the traps of an mTLS setup in manifests, running nothing: scenario
    /// folders, folders of scenarios, or folders of plain manifests.
    Lint(LintArgs),
    /// Build the container image of this binary (what the kind substrate loads),
    /// without pulling anything; push it yourself for `--substrate existing`.
    Image {
        #[arg(long, default_value = cluster::image::DEFAULT_IMAGE)]
        tag: String,
        /// Build with `docker build` from the repository's Dockerfile even where
        /// this binary could be imported (what macOS and other CPUs get anyway).
        #[arg(long)]
        in_docker: bool,
    },
    /// Write a scenario from your manifests: DIR's own (or those of --from:
    /// folders, files, `kubectl get -o yaml` dumps, `helm template` output),
    /// with the identities, trust bundles and checks their policies imply.
    Init {
        dir: PathBuf,
        /// Manifests to read (copied, or split per object, into DIR).
        #[arg(long, num_args = 1..)]
        from: Vec<PathBuf>,
    },
    /// Download every pinned release file (cert-manager's manifest, NIC 5.5.4's
    /// and 5.3.4's), each sha256-checked, into the cache: what the kind
    /// substrate installs, and where the tests read the CRD schemas from.
    Download {
        /// Downloads, kubeconfigs and cluster markers (default: ~/.cache/mtls-e2e).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Serve one of our mock components (what the container image runs).
    Serve {
        #[command(subcommand)]
        what: ServeArgs,
    },
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Scenario folders, or folders of scenarios.
    pub dirs: Vec<PathBuf>,
    /// Also prove the checks bite (local substrate): run each scenario's
    /// mutations, the hand-written ones (`declared`), the ones derived from its
    /// objects (`builtin`), or both (`all`, the default).
    #[arg(
        long,
        value_enum,
        value_name = "WHICH",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "all"
    )]
    pub mutations: Option<MutationsArg>,
    /// Write the machine-readable report (JSON) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the results as `JUnit` XML here (for CI).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Report only checks whose `scenario/check` matches (a substring, or a glob
    /// with * ? [ ]); repeatable. Checks that share state still run with their group.
    #[arg(long = "check", value_name = "PATTERN")]
    pub check: Vec<String>,
    /// Leave out checks whose `scenario/check` matches; repeatable.
    #[arg(long = "skip", value_name = "PATTERN")]
    pub skip: Vec<String>,
    #[command(flatten)]
    pub substrate: SubstrateArgs,
}

/// `--mutations=WHICH`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum MutationsArg {
    /// The scenario's `mutations:` and the built-in ones.
    All,
    /// The scenario's `mutations:` only.
    Declared,
    /// The built-in ones only (derived from the scenario's objects).
    Builtin,
}

impl MutationsArg {
    pub(crate) fn kinds(self) -> crate::engine::MutationKinds {
        crate::engine::MutationKinds {
            declared: self != MutationsArg::Builtin,
            builtin: self != MutationsArg::Declared,
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct LintArgs {
    /// Scenario folders, folders of scenarios, or folders (or files) of manifests
    /// (default: ./scenarios).
    pub dirs: Vec<PathBuf>,
    /// Output: `human`, `json` (schema mtls-e2e.lint/v1) or `sarif` (SARIF 2.1.0).
    #[arg(long, value_enum, default_value = "human")]
    pub format: LintFormat,
    /// Exit 1 when a finding at or above this level exists.
    #[arg(long, value_enum, default_value = "error")]
    pub deny: crate::lint::Level,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LintFormat {
    Human,
    Json,
    Sarif,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SubstrateName {
    /// No cluster: real nginx and TLS, the harness plays cert-manager and NIC.
    Local,
    /// A kind cluster the harness creates and installs.
    Kind,
    /// A cluster from your kubeconfig, with cert-manager and NIC installed.
    Existing,
}

/// Options left out stay `None` (their defaults applied below), so that one
/// given for a substrate it does not apply to is refused even when it names
/// the default value.
#[derive(clap::Args)]
pub(crate) struct SubstrateArgs {
    #[arg(long, value_enum, default_value = "local")]
    substrate: SubstrateName,
    /// kind: the cluster's name, reused when it exists and answers [default: mtls-e2e].
    #[arg(long)]
    cluster: Option<String>,
    /// kind: the Kubernetes version, a node image pinned by digest [default: 1.34].
    #[arg(long)]
    k8s_version: Option<String>,
    /// kind: the NIC release to install (5.5.4, 5.3.4); existing: override the
    /// version read from NIC's image.
    #[arg(long)]
    nic_version: Option<String>,
    /// existing: the kubeconfig context (default: the current one).
    #[arg(long)]
    context: Option<String>,
    /// existing: the namespace NIC runs in (default: found from its Deployment
    /// or `DaemonSet`, by its label or image).
    #[arg(long)]
    nic_namespace: Option<String>,
    /// existing: the namespace cert-manager runs in (default: found from its
    /// Deployments, by their labels or images).
    #[arg(long)]
    cert_manager_namespace: Option<String>,
    /// The image our Deployments run (kind: built here and loaded; existing:
    /// one your cluster can pull, or already has) [default: mtls-e2e:e2e].
    #[arg(long)]
    image: Option<String>,
    /// kind: delete the cluster `--cluster` and create it anew, when this
    /// tool created it (its marker says so); for one that exists but does not
    /// fit (another Kubernetes version, no 80/443 mappings or ingress label).
    #[arg(long)]
    recreate: bool,
    /// Keep the kind cluster and the scenarios' objects at the end.
    #[arg(long)]
    keep: bool,
    /// kind, existing: let the run overwrite this object of someone else's
    /// (Kind/name or Kind/namespace/name); it is never deleted. Repeatable.
    #[arg(long, value_name = "KIND/[NAMESPACE/]NAME")]
    adopt: Vec<String>,
    /// kind, existing: where failing scenarios' evidence goes [default: mtls-e2e-artifacts].
    #[arg(long)]
    artifacts: Option<PathBuf>,
    /// Downloads, kubeconfigs and cluster markers (default: ~/.cache/mtls-e2e).
    #[arg(long)]
    cache: Option<PathBuf>,
}

impl SubstrateArgs {
    /// Whether the run is on a cluster (its steps take minutes).
    pub(crate) fn is_cluster(&self) -> bool {
        self.substrate != SubstrateName::Local
    }

    /// The cluster options, or `None` for the local substrate. Options that do
    /// not apply to the chosen substrate are refused rather than ignored, each
    /// one given, whatever its value.
    pub(crate) fn cluster_options(&self) -> Result<Option<ClusterOptions>, Error> {
        let kind_only = [
            ("--cluster", self.cluster.is_some()),
            ("--k8s-version", self.k8s_version.is_some()),
            ("--recreate", self.recreate),
        ];
        let existing_only = [
            ("--context", self.context.is_some()),
            ("--nic-namespace", self.nic_namespace.is_some()),
            (
                "--cert-manager-namespace",
                self.cert_manager_namespace.is_some(),
            ),
        ];
        let cluster_only = [
            ("--nic-version", self.nic_version.is_some()),
            ("--image", self.image.is_some()),
            ("--keep", self.keep),
            ("--adopt", !self.adopt.is_empty()),
            ("--cache", self.cache.is_some()),
            ("--artifacts", self.artifacts.is_some()),
        ];
        let refuse = |flags: &[(&str, bool)], what: &str, chosen: &str| -> Vec<String> {
            flags
                .iter()
                .filter(|(_, set)| *set)
                .map(|(flag, _)| {
                    format!("{flag} applies to {what} only, not to --substrate {chosen}")
                })
                .collect()
        };
        let refused = match self.substrate {
            SubstrateName::Local => [
                refuse(&kind_only, "--substrate kind", "local"),
                refuse(&existing_only, "--substrate existing", "local"),
                refuse(&cluster_only, "--substrate kind or existing", "local"),
            ]
            .concat(),
            SubstrateName::Kind => refuse(&existing_only, "--substrate existing", "kind"),
            SubstrateName::Existing => refuse(&kind_only, "--substrate kind", "existing"),
        };
        if !refused.is_empty() {
            return Err(Error::Input(refused.join("; ")));
        }
        let image = self
            .image
            .clone()
            .unwrap_or_else(|| cluster::image::DEFAULT_IMAGE.to_string());
        let mode = match self.substrate {
            SubstrateName::Local => return Ok(None),
            SubstrateName::Kind => {
                let name = self
                    .cluster
                    .clone()
                    .unwrap_or_else(|| cluster::kind::CLUSTER_PREFIX.to_string());
                if !name.starts_with(cluster::kind::CLUSTER_PREFIX) {
                    return Err(Error::Input(format!(
                        "--cluster must start with `{}` so that the stale-cluster sweep can tell our clusters from yours",
                        cluster::kind::CLUSTER_PREFIX
                    )));
                }
                let k8s = self
                    .k8s_version
                    .clone()
                    .unwrap_or_else(|| cluster::kind::DEFAULT_K8S.to_string());
                cluster::kind::node_image(&k8s).map_err(|e| Error::from(&e))?;
                if let Some(v) = &self.nic_version {
                    cluster::install::nic_release(v).map_err(|e| Error::from(&e))?;
                }
                Mode::Kind {
                    name,
                    k8s,
                    recreate: self.recreate,
                }
            }
            SubstrateName::Existing => Mode::Existing {
                context: self.context.clone(),
                nic_namespace: self.nic_namespace.clone(),
                cert_manager_namespace: self.cert_manager_namespace.clone(),
            },
        };
        let artifacts = self
            .artifacts
            .clone()
            .unwrap_or_else(|| PathBuf::from("mtls-e2e-artifacts"));
        let artifacts = if artifacts.is_absolute() {
            artifacts
        } else {
            std::env::current_dir()
                .map_err(|e| Error::Substrate(format!("reading the current folder: {e}")))?
                .join(artifacts)
        };
        Ok(Some(ClusterOptions {
            mode,
            nic: self.nic_version.clone(),
            image,
            keep: self.keep,
            adopt: self
                .adopt
                .iter()
                .map(|a| cluster::ownership::parse_adopt(a))
                .collect::<Result<_, _>>()
                .map_err(Error::Input)?,
            artifacts,
            cache: self.cache.clone().unwrap_or_else(cluster::default_cache),
        }))
    }
}

/// The substrate options as the command line would read them from `words`
/// (e.g. `["--substrate", "kind", "--k8s-version", "1.33"]`), with the same
/// validation: for callers that are not the command line, such as the tests.
///
/// # Errors
/// [`Error::Input`] when the words do not parse or an option does not apply.
pub fn cluster_options_from_words(words: &[String]) -> Result<Option<ClusterOptions>, Error> {
    #[derive(Parser)]
    struct Words {
        #[command(flatten)]
        substrate: SubstrateArgs,
    }
    let parsed =
        Words::try_parse_from(std::iter::once("mtls-e2e".to_string()).chain(words.iter().cloned()))
            .map_err(|e| Error::Input(e.to_string().trim_end().to_string()))?;
    parsed.substrate.cluster_options()
}

/// Whether the run will be able to write `path`: an existing file it may
/// open for writing, or a new file in an existing folder it may write in.
/// Nothing is created or changed.
pub(crate) fn check_writable(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("is a folder; give a file name".into());
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(|_| ())
            .map_err(|e| format!("cannot be written: {e}"));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!("the folder {} does not exist", parent.display()));
    }
    // A probe file in the same folder, removed again at once.
    tempfile::NamedTempFile::new_in(parent)
        .map(drop)
        .map_err(|e| format!("cannot create a file in {}: {e}", parent.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(ToString::to_string).collect()
    }

    /// The test suite's `MTLS_E2E`_* options go through the command line's
    /// checks: a NIC release we do not pin is refused before a cluster exists.
    #[test]
    fn options_from_words_are_validated_as_the_command_line_does() {
        let bad =
            cluster_options_from_words(&words(&["--substrate", "kind", "--nic-version", "9.9.9"]));
        assert!(matches!(bad, Err(Error::Input(_))), "{:?}", bad.err());
        let local_only = cluster_options_from_words(&words(&["--keep"]));
        assert!(
            matches!(&local_only, Err(Error::Input(m)) if m.contains("--keep applies to --substrate kind or existing only")),
            "{:?}",
            local_only.err()
        );
        assert!(matches!(cluster_options_from_words(&[]), Ok(None)));
        let kind = cluster_options_from_words(&words(&["--substrate", "kind", "--keep"]))
            .ok()
            .flatten()
            .expect("kind options");
        assert!(kind.is_kind() && kind.keep);
    }

    /// An option for another substrate is refused even when it names the
    /// default value (it would otherwise be accepted and do nothing), and
    /// every such option is named at once.
    #[test]
    fn options_for_another_substrate_are_refused_whatever_their_value() {
        for given in [
            &["--artifacts", "mtls-e2e-artifacts"][..],
            &["--image", cluster::image::DEFAULT_IMAGE],
            &["--cluster", "mtls-e2e"],
            &["--k8s-version", cluster::kind::DEFAULT_K8S],
            &["--nic-namespace", "nginx-ingress"],
            &["--cert-manager-namespace", "cert-manager"],
        ] {
            let refused = cluster_options_from_words(&words(given));
            assert!(
                matches!(&refused, Err(Error::Input(m)) if m.contains(given[0]) && m.contains("not to --substrate local")),
                "{given:?}: {:?}",
                refused.err()
            );
        }
        let both = cluster_options_from_words(&words(&[
            "--substrate",
            "kind",
            "--context",
            "x",
            "--nic-namespace",
            "nginx-ingress",
        ]));
        assert!(
            matches!(&both, Err(Error::Input(m)) if m.contains("--context") && m.contains("--nic-namespace")),
            "{:?}",
            both.err()
        );
        let existing = cluster_options_from_words(&words(&[
            "--substrate",
            "existing",
            "--cluster",
            "mtls-e2e",
        ]));
        assert!(matches!(existing, Err(Error::Input(_))));
        let defaults = cluster_options_from_words(&words(&["--substrate", "kind"]))
            .ok()
            .flatten()
            .expect("kind options");
        assert_eq!(defaults.image, cluster::image::DEFAULT_IMAGE);
        assert!(defaults.artifacts.ends_with("mtls-e2e-artifacts"));
    }
}
