//! Our container image. Where this machine's binary can run in the kind node
//! (Linux, the node's CPU architecture), it is built without pulling anything:
//! the binary and the shared libraries it links, in an otherwise empty root,
//! turned into an image by `docker import`. Elsewhere (macOS, Apple silicon's
//! arm64 nodes from an `x86_64` binary, ...) Docker builds it from the
//! repository's Dockerfile. The same image serves `aigw`, `webui` and `ollama`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ClusterError, run_tool, run_tool_with_input, tool};

/// The image the component manifests name (`manifests/components/*.yaml`).
pub const DEFAULT_IMAGE: &str = "mtls-e2e:e2e";

/// Where the binary sits in the image, and its entrypoint.
pub(crate) const ENTRYPOINT: &str = "/mtls-e2e";

/// `docker import` changes: the entrypoint, and an unprivileged user (the mocks
/// listen on ports above 1024 and only read their mounted Secrets).
pub(crate) const IMPORT_CHANGES: [&str; 2] = ["ENTRYPOINT [\"/mtls-e2e\"]", "USER 65534:65534"];

/// How the image is made on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// This binary and its libraries, imported: nothing is pulled.
    HostBinary,
    /// `docker build` from the repository's Dockerfile (pulls the Rust image).
    Dockerfile,
}

/// Docker's name for an architecture (`docker info`: `x86_64`, `aarch64`,
/// `amd64`, `arm64`) as Rust's `std::env::consts::ARCH` spells it.
fn rust_arch(docker: &str) -> &str {
    match docker.trim() {
        "amd64" | "x86_64" => "x86_64",
        "arm64" | "aarch64" => "aarch64",
        other => other,
    }
}

/// The host binary serves only where it can run: a Linux binary of the
/// architecture of Docker's daemon, which is the kind node's.
pub(crate) fn source_for(host_os: &str, host_arch: &str, daemon_arch: &str) -> ImageSource {
    if host_os == "linux" && rust_arch(daemon_arch) == host_arch {
        ImageSource::HostBinary
    } else {
        ImageSource::Dockerfile
    }
}

/// The repository this binary was built from, if it is still there with its
/// Dockerfile (what the Dockerfile path needs as its build context).
pub(crate) fn repository() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("Dockerfile")
        .is_file()
        .then(|| root.to_path_buf())
}

/// Decide, before any cluster exists, how this machine makes the image, and
/// refuse at once when it cannot.
///
/// # Errors
///
/// Docker does not answer, or the Dockerfile is needed and not found.
pub fn decide(force_dockerfile: bool) -> Result<ImageSource, ClusterError> {
    let source = if force_dockerfile {
        ImageSource::Dockerfile
    } else {
        let docker = tool("docker")?;
        let arch = run_tool(
            &docker,
            &["info", "--format", "{{.Architecture}}"],
            Duration::from_secs(30),
        )?;
        source_for(std::env::consts::OS, std::env::consts::ARCH, &arch)
    };
    if source == ImageSource::Dockerfile && repository().is_none() {
        return Err(ClusterError::Missing(format!(
            "this binary ({} {}) cannot run in the kind node, so the image is built from the repository's \
             Dockerfile, which is not at {}; run mtls-e2e from a checkout of the repository (`cargo run -- ...`)",
            std::env::consts::OS,
            std::env::consts::ARCH,
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("/"))
                .display()
        )));
    }
    Ok(source)
}

/// Build `image` the way `source` says.
///
/// # Errors
///
/// A tool is missing or fails.
pub fn build_with(source: ImageSource, image: &str, binary: &Path) -> Result<(), ClusterError> {
    match source {
        ImageSource::HostBinary => build(image, binary),
        ImageSource::Dockerfile => {
            let docker = tool("docker")?;
            let context = repository().ok_or_else(|| {
                ClusterError::Missing("the repository's Dockerfile is not found".into())
            })?;
            let args = dockerfile_args(image, &context);
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            run_tool(&docker, &words, Duration::from_secs(1800)).map(|_| ())
        }
    }
}

/// `docker build` of the repository's Dockerfile.
pub(crate) fn dockerfile_args(image: &str, context: &Path) -> Vec<String> {
    vec![
        "build".into(),
        "--tag".into(),
        image.into(),
        "--file".into(),
        context.join("Dockerfile").display().to_string(),
        context.display().to_string(),
    ]
}

/// Shared libraries `binary` loads, as absolute paths (from `ldd`).
pub(crate) fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let ldd = tool("ldd").map_err(|_| {
        ClusterError::Missing(
            "ldd is not on PATH; it comes with the C library (`sudo apt-get install libc-bin`)"
                .into(),
        )
    })?;
    let out = run_tool(
        &ldd,
        &[&binary.display().to_string()],
        Duration::from_secs(30),
    )?;
    Ok(parse_ldd(&out))
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no file.
pub(crate) fn parse_ldd(output: &str) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    libs
}

/// Lay out the image's root in `root`: the binary at `/mtls-e2e`, its libraries
/// at their paths, an empty `/tmp`.
pub(crate) fn rootfs(root: &Path, binary: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let io = |what: &Path, e: std::io::Error| {
        ClusterError::Failed(format!("building the image root: {}: {e}", what.display()))
    };
    let mut files = vec![PathBuf::from(ENTRYPOINT)];
    std::fs::copy(binary, root.join("mtls-e2e")).map_err(|e| io(binary, e))?;
    for lib in shared_libraries(binary)? {
        let target = root.join(lib.strip_prefix("/").unwrap_or(&lib));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        // Copy the file a symlink points to, under the link's name.
        std::fs::copy(&lib, &target).map_err(|e| io(&lib, e))?;
        files.push(lib);
    }
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| io(&tmp, e))?;
    Ok(files)
}

/// The `docker import` arguments for `image`.
pub(crate) fn import_args(image: &str) -> Vec<String> {
    let mut args = vec!["import".to_string()];
    for change in IMPORT_CHANGES {
        args.extend(["--change".to_string(), change.to_string()]);
    }
    args.extend(["-".to_string(), image.to_string()]);
    args
}

/// Build `image` from `binary` in the local Docker daemon. Nothing is pulled.
///
/// # Errors
///
/// Docker or ldd is missing or fails, or the binary's files cannot be read.
pub fn build(image: &str, binary: &Path) -> Result<(), ClusterError> {
    let docker = tool("docker")?;
    let tar = tool("tar").map_err(|_| {
        ClusterError::Missing("tar is not on PATH (`sudo apt-get install tar`)".into())
    })?;
    let root = tempfile::Builder::new()
        .prefix("mtls-e2e-image-")
        .tempdir()
        .map_err(|e| ClusterError::Failed(format!("cannot create a temporary folder: {e}")))?;
    rootfs(root.path(), binary)?;
    let archive = root.path().with_extension("tar");
    let dir = root.path().display().to_string();
    let archive_arg = archive.display().to_string();
    let tarred = run_tool(
        &tar,
        &[
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-C",
            &dir,
            "-cf",
            &archive_arg,
            ".",
        ],
        Duration::from_secs(120),
    );
    let result = tarred.and_then(|_| {
        let bytes = std::fs::read(&archive)
            .map_err(|e| ClusterError::Failed(format!("reading {}: {e}", archive.display())))?;
        let args = import_args(image);
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        run_tool_with_input(&docker, &words, Some(&bytes), Duration::from_secs(300)).map(|_| ())
    });
    let _ = std::fs::remove_file(&archive);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host binary only where it runs in the node; Docker builds elsewhere.
    #[test]
    fn the_image_is_built_in_docker_where_the_host_binary_cannot_serve() {
        use ImageSource::{Dockerfile, HostBinary};
        let cases = [
            ("linux", "x86_64", "x86_64", HostBinary),
            ("linux", "x86_64", "amd64\n", HostBinary),
            ("linux", "aarch64", "aarch64", HostBinary),
            ("linux", "aarch64", "arm64", HostBinary),
            // An x86_64 Linux binary on an arm64 daemon (or the reverse).
            ("linux", "x86_64", "aarch64", Dockerfile),
            ("linux", "aarch64", "x86_64", Dockerfile),
            // macOS: a Mach-O binary never runs in a Linux node, whatever the CPU.
            ("macos", "aarch64", "aarch64", Dockerfile),
            ("macos", "x86_64", "x86_64", Dockerfile),
        ];
        for (os, arch, daemon, want) in cases {
            assert_eq!(
                source_for(os, arch, daemon),
                want,
                "{os} {arch} on {daemon}"
            );
        }
    }

    /// The Dockerfile is multi-stage, its last stage has no shell (scratch),
    /// and it builds the binary from the sources it copies.
    #[test]
    fn the_dockerfile_builds_a_static_binary_into_an_image_without_a_shell() {
        let root = repository().expect("the repository's Dockerfile");
        let text = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
        let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert_eq!(stages.len(), 2, "{stages:?}");
        assert_eq!(stages[1], "FROM scratch");
        assert!(text.contains("alpine"), "musl: a static binary");
        assert!(text.contains("ENTRYPOINT [\"/mtls-e2e\"]"));
        assert!(text.contains("USER 65534:65534"));
        for copied in ["Cargo.toml", "harness", "manifests"] {
            assert!(text.contains(&format!("COPY {copied}")), "{copied}");
        }
        assert_eq!(
            dockerfile_args("mtls-e2e:e2e", &root)[..3],
            ["build", "--tag", "mtls-e2e:e2e"]
        );
    }

    #[test]
    fn ldd_output_gives_library_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\t/lib64/ld-linux-x86-64.so.2 (0x3)\n";
        assert_eq!(
            parse_ldd(out),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(parse_ldd("\tstatically linked\n").is_empty());
    }

    #[test]
    fn the_root_holds_the_binary_and_its_libraries() {
        let root = tempfile::tempdir().expect("tempdir");
        let binary = std::env::current_exe().expect("exe");
        let files = rootfs(root.path(), &binary).expect("rootfs");
        assert!(root.path().join("mtls-e2e").is_file());
        for f in &files[1..] {
            assert!(
                root.path()
                    .join(f.strip_prefix("/").expect("absolute"))
                    .is_file(),
                "{}",
                f.display()
            );
        }
        assert!(root.path().join("tmp").is_dir());
    }
}
