//! Our image, built as the kind substrate builds it (no base image, nothing
//! pulled) and run under Docker through testcontainers: the Ollama stand-in and
//! the AI gateway (configured by tutorial 002's aigw.yaml) in two containers on
//! a private network, the gateway published on 127.0.0.1. The gateway must
//! require a client certificate from the Internal CA and answer a chat
//! completion through the Ollama container, found by name through the
//! container's DNS, as it finds Ollama's Service in a cluster.
//!
//! Needs a Docker daemon. Without one the trial is ignored, unless
//! `MTLS_E2E_REQUIRE_DOCKER=1` (CI sets it), when it fails instead.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use libtest_mimic::{Failed, Trial};
use mtls_e2e::manifest::Kind;
use mtls_e2e::pki::{self, CertSpec, KeyAlgorithm, Usage};
use mtls_e2e::probe::native::{HttpRequest, TlsOptions};
use mtls_e2e::probe::{self, Identity, Trust};
use mtls_e2e::scenario::Scenario;
use mtls_e2e::substrate::cluster::{self, image};
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

const GATEWAY_HOST: &str = "aigw.ai-gateway.svc.cluster.local";
const OLLAMA_HOST: &str = "ollama.ai-gateway.svc.cluster.local";

pub fn trials() -> Vec<Trial> {
    let name = "container/gateway-image-answers-mtls-and-chat";
    let required = std::env::var("MTLS_E2E_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    let reachable = docker_answers();
    if !reachable && !required {
        eprintln!(
            "note: {name} is ignored: no Docker daemon answers `docker info` (set MTLS_E2E_REQUIRE_DOCKER=1 to make that a failure)"
        );
        return vec![Trial::test(name, || Ok(())).with_ignored_flag(true)];
    }
    vec![Trial::test(name, move || {
        if !reachable {
            return Err("MTLS_E2E_REQUIRE_DOCKER=1 but no Docker daemon answers `docker info` (is DOCKER_HOST set?)".into());
        }
        let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        runtime.block_on(gateway_in_containers())
    })]
}

fn docker_answers() -> bool {
    cluster::tool("docker").is_ok_and(|docker| {
        cluster::run_tool(
            &docker,
            &["info", "--format", "{{.ServerVersion}}"],
            Duration::from_secs(20),
        )
        .is_ok()
    })
}

/// Tutorial 002's aigw.yaml, from the scenario's `ConfigMap`, with Ollama's
/// Service name replaced by the Ollama container's name.
fn gateway_config(ollama: &str) -> Result<String, Failed> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/aigw-egress-mtls");
    let scenario = Scenario::load(&dir).map_err(|e| e.to_string())?;
    let config_map = scenario
        .objects
        .iter()
        .find(|o| o.id.kind == Kind::ConfigMap && o.name() == "aigw-config")
        .ok_or("aigw-egress-mtls has no ConfigMap aigw-config")?;
    let text = config_map.to_json()["data"]["aigw.yaml"]
        .as_str()
        .ok_or("aigw-config has no aigw.yaml")?
        .to_string();
    if !text.contains(OLLAMA_HOST) {
        return Err(format!("aigw.yaml no longer calls {OLLAMA_HOST}").into());
    }
    Ok(text.replace(OLLAMA_HOST, ollama))
}

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client: Identity,
    trust: Trust,
}

fn pki(dir: &Path) -> Result<Pki, Failed> {
    let err = |e: pki::PkiError| Failed::from(e.to_string());
    let key = || KeyAlgorithm::Ecdsa(256).generate().map_err(err);
    let mut ca_spec = CertSpec::new("Internal CA", time::Duration::days(1));
    ca_spec.is_ca = true;
    ca_spec.usages = vec![Usage::CertSign, Usage::CrlSign, Usage::DigitalSignature];
    let ca = pki::issue(&ca_spec, key()?, None).map_err(err)?;
    let ca_pem = ca.cert_pem.clone();
    let authority = pki::Authority::from_pem(&ca.cert_pem, &ca.key.serialize_pem()).map_err(err)?;

    let mut server_spec = CertSpec::new(GATEWAY_HOST, time::Duration::days(1));
    server_spec.dns_names = vec![GATEWAY_HOST.into()];
    server_spec.usages = vec![
        Usage::DigitalSignature,
        Usage::KeyEncipherment,
        Usage::ServerAuth,
    ];
    let server = pki::issue(&server_spec, key()?, Some(&authority)).map_err(err)?;

    let mut client_spec = CertSpec::new("nginx-ingress", time::Duration::days(1));
    client_spec.usages = vec![
        Usage::DigitalSignature,
        Usage::KeyEncipherment,
        Usage::ClientAuth,
    ];
    let client = pki::issue(&client_spec, key()?, Some(&authority)).map_err(err)?;

    let write = |name: &str, text: &str| -> Result<std::path::PathBuf, Failed> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Ok(path)
    };
    let identity = Identity {
        name: "nic-client".into(),
        chain_pem: client.cert_pem.clone(),
        key_pem: client.key.serialize_pem(),
        cert_path: write("client.crt", &client.cert_pem)?,
        key_path: write("client.key", &client.key.serialize_pem())?,
    };
    let trust = Trust {
        name: "internal-ca".into(),
        pem: ca_pem.clone(),
        path: write("ca.crt", &ca_pem)?,
    };
    Ok(Pki {
        ca: ca_pem,
        server_cert: server.cert_pem,
        server_key: server.key.serialize_pem(),
        client: identity,
        trust,
    })
}

async fn gateway_in_containers() -> Result<(), Failed> {
    let tag = format!("e2e-test-{}", std::process::id());
    let image_name = format!("{}:{tag}", repository());
    image::build(&image_name, Path::new(env!("CARGO_BIN_EXE_mtls-e2e")))
        .map_err(|e| e.to_string())?;
    let result = exercise(&tag).await;
    // The containers are gone (dropped in `exercise`); remove the image too.
    if let Ok(docker) = cluster::tool("docker") {
        let _ = cluster::run_tool(
            &docker,
            &["image", "rm", "-f", &image_name],
            Duration::from_secs(60),
        );
    }
    result
}

/// The repository part of our image name (`mtls-e2e`).
fn repository() -> &'static str {
    image::DEFAULT_IMAGE.split(':').next().unwrap_or("mtls-e2e")
}

async fn exercise(tag: &str) -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pki = pki(dir.path())?;
    let suffix = std::process::id();
    let network = format!("mtls-e2e-test-{suffix}");
    let ollama_name = format!("mtls-e2e-ollama-{suffix}");
    let started = |what: &str, e: testcontainers::TestcontainersError| {
        Failed::from(format!("starting the {what} container: {e}"))
    };

    let ollama = GenericImage::new(repository(), tag)
        .with_wait_for(WaitFor::message_on_stdout("listening on"))
        .with_cmd(["serve", "ollama"])
        .with_network(&network)
        .with_container_name(&ollama_name)
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .map_err(|e| started("ollama", e))?;

    let gateway = GenericImage::new(repository(), tag)
        .with_exposed_port(ContainerPort::Tcp(4141))
        .with_wait_for(WaitFor::message_on_stdout("listening on"))
        .with_cmd(["serve", "aigw", "--config", "/etc/aigw/aigw.yaml"])
        .with_network(&network)
        .with_copy_to(
            "/etc/aigw/aigw.yaml",
            gateway_config(&ollama_name)?.into_bytes(),
        )
        .with_copy_to("/tls/server.crt", pki.server_cert.clone().into_bytes())
        .with_copy_to("/tls/server.key", pki.server_key.clone().into_bytes())
        .with_copy_to("/etc/internal-ca/ca.crt", pki.ca.clone().into_bytes())
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .map_err(|e| started("gateway", e))?;
    let port = gateway
        .get_host_port_ipv4(4141)
        .await
        .map_err(|e| e.to_string())?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    let outcome = probe_gateway(addr, &pki).await;
    if outcome.is_err() {
        let logs = gateway.stdout_to_vec().await.unwrap_or_default();
        eprintln!("gateway container log:\n{}", String::from_utf8_lossy(&logs));
    }
    drop(ollama);
    outcome
}

fn request<'a>(
    addr: std::net::SocketAddr,
    identity: Option<&'a Identity>,
    trust: Option<&'a Trust>,
    body: Bytes,
) -> HttpRequest<'a> {
    let path = "/v1/chat/completions";
    HttpRequest {
        addr,
        tls: Some(TlsOptions {
            server_name: GATEWAY_HOST.into(),
            identity,
            trust,
        }),
        method: "POST",
        host: GATEWAY_HOST.into(),
        path: path.into(),
        headers: BTreeMap::from([("content-type".to_string(), "application/json".to_string())]),
        body: Some(body),
        display: format!("https://{GATEWAY_HOST}{path}"),
        source: None,
    }
}

async fn probe_gateway(addr: std::net::SocketAddr, pki: &Pki) -> Result<(), Failed> {
    let chat = Bytes::from(
        r#"{"model":"hermes3:8b","messages":[{"role":"user","content":"Why is the sky blue?"}]}"#,
    );
    let seen = probe::native::http(&request(
        addr,
        Some(&pki.client),
        Some(&pki.trust),
        chat.clone(),
    ))
    .await;
    let tls = seen.tls.clone().unwrap_or_default();
    let status = seen.response.as_ref().map(|r| r.status);
    let body = seen
        .response
        .as_ref()
        .map(|r| r.body.clone())
        .unwrap_or_default();
    let mut problems = Vec::new();
    if status != Some(200) || !body.contains("hermes3:8b") || !body.contains("chat.completion") {
        let excerpt: String = body.chars().take(300).collect();
        problems.push(format!("chat completion with the client certificate: status {status:?}, body {excerpt}, error {:?}", seen.error));
    }
    if tls.protocol.as_deref() != Some("TLSv1.3") || !tls.client_cert_requested {
        problems.push(format!(
            "handshake: protocol {:?}, client certificate requested: {}",
            tls.protocol, tls.client_cert_requested
        ));
    }
    if !tls
        .acceptable_ca_names
        .iter()
        .any(|n| n.contains("Internal CA"))
    {
        problems.push(format!(
            "the gateway should name Internal CA as acceptable; it named {:?}",
            tls.acceptable_ca_names
        ));
    }
    if !tls.verification.contains("OK") {
        problems.push(format!(
            "the gateway's certificate should verify against the Internal CA: {}",
            tls.verification
        ));
    }

    let without = probe::native::http(&request(addr, None, None, chat)).await;
    if without.response.as_ref().is_some_and(|r| r.status == 200) || !without.rejected {
        problems.push(format!(
            "without a client certificate the gateway must refuse the connection; it answered {:?} (rejected: {}, error: {:?})",
            without.response.as_ref().map(|r| r.status),
            without.rejected,
            without.error
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the gateway in the container at {addr}:\n  {}",
            problems.join("\n  ")
        )
        .into())
    }
}
