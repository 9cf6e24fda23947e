//! The F5 AI Gateway stand-in, configured by F5's `aigw.yaml`.
//!
//! What it does, from F5's documentation (see the notes): server TLS and mTLS
//! (`mtls.clientCertPath` is the CA that verifies clients), routes with the
//! `v1/chat_completions` and `v1/models` schemas, policies → profiles → services
//! chosen by `input.model` selectors, and the `ollama` executor calling the
//! configured `/api/chat`. Mock-only choices, documented in the README: TLS 1.3
//! only; the `prompt-injection` processor runs inside the mock (a phrase
//! heuristic scored against `threshold`) instead of calling `config.endpoint`;
//! a rejection answers 400 with an OpenAI-style error, code `AIGW_POLICY_VIOLATION`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{MockContext, MockError, Peer, json_response, openai_error, unix_now};
use crate::net;

const COMPONENT: &str = "aigw";

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[allow(
    dead_code,
    reason = "read so that the F5 AI gateway's config parses as the gateway reads it; the mock does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Config {
    pub version: Option<u32>,
    pub mode: Option<String>,
    pub server: ServerCfg,
    pub admin_server: Option<Value>,
    pub logging: Option<Value>,
    #[serde(default)]
    pub routes: Vec<RouteCfg>,
    #[serde(default)]
    pub policies: Vec<PolicyCfg>,
    #[serde(default)]
    pub profiles: Vec<ProfileCfg>,
    #[serde(default)]
    pub services: Vec<ServiceCfg>,
    #[serde(default)]
    pub processors: Vec<ProcessorCfg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerCfg {
    pub address: String,
    pub tls: Option<TlsCfg>,
    pub mtls: Option<MtlsCfg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TlsCfg {
    #[serde(default)]
    pub enabled: bool,
    pub server_cert_path: Option<String>,
    pub server_key_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MtlsCfg {
    #[serde(default)]
    pub enabled: bool,
    /// Despite the name, the CA bundle that verifies client certificates.
    pub client_cert_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RouteCfg {
    pub path: String,
    pub policy: String,
    pub schema: String,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyCfg {
    pub name: String,
    pub profiles: Vec<NameRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameRef {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProfileCfg {
    pub name: String,
    #[serde(default)]
    pub models: Vec<NameRef>,
    #[serde(default)]
    pub input_stages: Vec<StageCfg>,
    #[serde(default)]
    pub response_stages: Vec<StageCfg>,
    #[serde(default)]
    pub services: Vec<ServiceRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageCfg {
    pub name: String,
    pub steps: Vec<NameRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceRef {
    pub name: String,
    pub selector: Option<SelectorCfg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SelectorCfg {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceCfg {
    pub name: String,
    /// The model name sent upstream.
    #[serde(rename = "type")]
    pub type_: String,
    pub executor: String,
    pub config: ServiceConfigCfg,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceConfigCfg {
    pub endpoint: String,
}

#[allow(
    dead_code,
    reason = "read so that the F5 AI gateway's config parses as the gateway reads it; the mock does not need it"
)]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcessorCfg {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub config: Option<Value>,
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
}

pub(crate) struct Gateway {
    config: Config,
    ctx: MockContext,
}

fn err(message: impl Into<String>) -> MockError {
    MockError {
        component: COMPONENT,
        message: message.into(),
    }
}

impl Gateway {
    /// Read and check `aigw.yaml`, refusing what the real gateway would refuse.
    pub(crate) fn load(path: &str, ctx: &MockContext) -> Result<Gateway, MockError> {
        let text = ctx.read(COMPONENT, path)?;
        let text = String::from_utf8(text).map_err(|_| err(format!("{path} is not UTF-8")))?;
        let config: Config = crate::yaml::parse_one(&text, std::path::Path::new(path))
            .map_err(|e| err(e.to_string()))?;
        validate(&config)?;
        Ok(Gateway {
            config,
            ctx: ctx.clone(),
        })
    }

    pub(crate) fn address(&self) -> &str {
        &self.config.server.address
    }

    pub(crate) fn tls_config(
        &self,
        ctx: &MockContext,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, MockError> {
        let server = &self.config.server;
        let Some(tls) = server.tls.as_ref().filter(|t| t.enabled) else {
            if server.mtls.as_ref().is_some_and(|m| m.enabled) {
                return Err(err("server.mtls.enabled needs server.tls.enabled"));
            }
            return Ok(None);
        };
        let cert = ctx.read(
            COMPONENT,
            tls.server_cert_path
                .as_deref()
                .ok_or_else(|| err("server.tls.serverCertPath is required"))?,
        )?;
        let key = ctx.read(
            COMPONENT,
            tls.server_key_path
                .as_deref()
                .ok_or_else(|| err("server.tls.serverKeyPath is required"))?,
        )?;
        let client_ca = match server.mtls.as_ref().filter(|m| m.enabled) {
            Some(m) => Some(
                ctx.read(
                    COMPONENT,
                    m.client_cert_path
                        .as_deref()
                        .ok_or_else(|| err("server.mtls.clientCertPath is required"))?,
                )?,
            ),
            None => None,
        };
        super::tls::server_config(&cert, &key, client_ca.as_deref())
            .map(Some)
            .map_err(err)
    }

    pub(crate) async fn handle(
        &self,
        request: hyper::Request<Incoming>,
        _peer: &Peer,
    ) -> hyper::Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        let Some(route) = self.config.routes.iter().find(|r| r.path == path) else {
            return openai_error(
                404,
                "invalid_request_error",
                "not_found",
                &format!("no route for {path}"),
            );
        };
        let Some(profile) = self.profile_for(route) else {
            return openai_error(500, "api_error", "config", "route policy has no profile");
        };
        match route.schema.as_str() {
            "v1/models" => self.models(profile),
            "v1/chat_completions" => {
                if request.method() != hyper::Method::POST {
                    return openai_error(
                        405,
                        "invalid_request_error",
                        "method_not_allowed",
                        "use POST",
                    );
                }
                let body = match net::read_body(request.into_body()).await {
                    Ok(b) => b,
                    Err(e) => return openai_error(400, "invalid_request_error", "body", &e),
                };
                let timeout = Duration::from_secs(route.timeout_seconds.unwrap_or(60));
                self.chat(profile, &body, timeout).await
            }
            other => openai_error(
                500,
                "api_error",
                "config",
                &format!("schema {other} is not served"),
            ),
        }
    }

    fn profile_for(&self, route: &RouteCfg) -> Option<&ProfileCfg> {
        let policy = self
            .config
            .policies
            .iter()
            .find(|p| p.name == route.policy)?;
        let first = policy.profiles.first()?;
        self.config.profiles.iter().find(|p| p.name == first.name)
    }

    fn models(&self, profile: &ProfileCfg) -> hyper::Response<Full<Bytes>> {
        let created = unix_now();
        let data: Vec<Value> = profile
            .models
            .iter()
            .map(|m| json!({"id": m.name, "object": "model", "created": created, "owned_by": "aigw"}))
            .collect();
        json_response(200, &json!({"object": "list", "data": data}))
    }

    async fn chat(
        &self,
        profile: &ProfileCfg,
        body: &[u8],
        timeout: Duration,
    ) -> hyper::Response<Full<Bytes>> {
        let request: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return openai_error(
                    400,
                    "invalid_request_error",
                    "invalid_json",
                    &format!("invalid JSON: {e}"),
                );
            }
        };
        let Some(messages) = request.get("messages").and_then(Value::as_array) else {
            return openai_error(
                400,
                "invalid_request_error",
                "messages",
                "`messages` is required",
            );
        };
        if request.get("stream").and_then(Value::as_bool) == Some(true) {
            return openai_error(
                400,
                "invalid_request_error",
                "stream",
                "streaming is not supported",
            );
        }
        let model = request.get("model").and_then(Value::as_str);
        if let Some(model) = model {
            if profile.models.is_empty() {
                return openai_error(
                    400,
                    "invalid_request_error",
                    "model",
                    "the profile has no models; omit `model`",
                );
            }
            if !profile.models.iter().any(|m| m.name == model) {
                return openai_error(
                    400,
                    "invalid_request_error",
                    "model_not_found",
                    &format!("model `{model}` is not offered"),
                );
            }
        }
        if let Some(rejection) = self.run_input_stages(profile, messages) {
            return rejection;
        }
        let Some(service) = self.service_for(profile, model) else {
            return openai_error(
                400,
                "invalid_request_error",
                "no_service",
                "no service matches the request",
            );
        };
        self.execute(service, messages, timeout).await
    }

    fn service_for(&self, profile: &ProfileCfg, model: Option<&str>) -> Option<&ServiceCfg> {
        let chosen = profile
            .services
            .iter()
            .find(|s| match (&s.selector, model) {
                (None, _) => true,
                (Some(sel), Some(model)) => {
                    sel.type_.as_deref() == Some("input.model")
                        && sel.values.iter().any(|v| v == model)
                }
                (Some(_), None) => false,
            })?;
        self.config.services.iter().find(|s| s.name == chosen.name)
    }

    /// Input stages: each step names a processor. Returns a response when a
    /// processor rejects the request.
    fn run_input_stages(
        &self,
        profile: &ProfileCfg,
        messages: &[Value],
    ) -> Option<hyper::Response<Full<Bytes>>> {
        for stage in &profile.input_stages {
            for step in &stage.steps {
                let Some(processor) = self.config.processors.iter().find(|p| p.name == step.name)
                else {
                    continue;
                };
                if processor.name != "prompt-injection" {
                    continue;
                }
                let threshold = processor
                    .params
                    .get("threshold")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.5);
                let reject = processor
                    .params
                    .get("reject")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let skip_system = processor
                    .params
                    .get("skip_system_messages")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let score = prompt_injection_score(messages, skip_system);
                if score >= threshold && reject {
                    self.ctx.log.line(COMPONENT, &format!("processor prompt-injection rejected the request (score {score:.2} >= {threshold})"));
                    return Some(openai_error(
                        400,
                        "invalid_request_error",
                        "AIGW_POLICY_VIOLATION",
                        "Possible Prompt Injection detected",
                    ));
                }
            }
        }
        None
    }

    async fn execute(
        &self,
        service: &ServiceCfg,
        messages: &[Value],
        timeout: Duration,
    ) -> hyper::Response<Full<Bytes>> {
        let upstream = json!({"model": service.type_, "messages": messages, "stream": false});
        let body = Bytes::from(serde_json::to_vec(&upstream).unwrap_or_default());
        let headers = [("content-type", "application/json".to_string())];
        let answer = net::http_call(
            &self.ctx.resolver,
            "POST",
            &service.config.endpoint,
            &headers,
            body,
            timeout,
        )
        .await;
        let answer = match answer {
            Ok(a) if a.status == 200 => a,
            Ok(a) => {
                let text = String::from_utf8_lossy(&a.body).to_string();
                return openai_error(
                    502,
                    "api_error",
                    "upstream",
                    &format!("{} answered {}: {text}", service.name, a.status),
                );
            }
            Err(e) => {
                return openai_error(
                    502,
                    "api_error",
                    "upstream",
                    &format!("{}: {e}", service.name),
                );
            }
        };
        let ollama: Value = match serde_json::from_slice(&answer.body) {
            Ok(v) => v,
            Err(e) => {
                return openai_error(
                    502,
                    "api_error",
                    "upstream",
                    &format!("{} sent invalid JSON: {e}", service.name),
                );
            }
        };
        let content = ollama
            .pointer("/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let model = ollama
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(&service.type_);
        let finish = match ollama.get("done_reason").and_then(Value::as_str) {
            Some("length") => "length",
            _ => "stop",
        };
        let prompt_tokens = ollama
            .get("prompt_eval_count")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let completion_tokens = ollama
            .get("eval_count")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        json_response(
            200,
            &json!({
                "id": format!("chatcmpl-mock{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
                "object": "chat.completion",
                "created": unix_now(),
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish,
                    "logprobs": null
                }],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens
                }
            }),
        )
    }
}

/// Phrases of classic prompt-injection attempts; any match scores 0.99.
const INJECTION_PHRASES: &[&str] = &[
    "ignore previous instructions",
    "ignore all previous instructions",
    "ignore the above",
    "disregard previous instructions",
    "disregard all prior",
    "reveal your system prompt",
    "you are now dan",
    "jailbreak",
];

pub(crate) fn prompt_injection_score(messages: &[Value], skip_system: bool) -> f64 {
    let hit = messages.iter().any(|m| {
        if skip_system && m.get("role").and_then(Value::as_str) == Some("system") {
            return false;
        }
        let text = m
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        INJECTION_PHRASES.iter().any(|p| text.contains(p))
    });
    if hit { 0.99 } else { 0.01 }
}

fn validate(config: &Config) -> Result<(), MockError> {
    for route in &config.routes {
        if !config.policies.iter().any(|p| p.name == route.policy) {
            return Err(err(format!(
                "route {} names unknown policy {}",
                route.path, route.policy
            )));
        }
        if !matches!(route.schema.as_str(), "v1/chat_completions" | "v1/models") {
            return Err(err(format!(
                "route {}: schema {} is not modelled by the mock",
                route.path, route.schema
            )));
        }
    }
    for policy in &config.policies {
        for p in &policy.profiles {
            if !config.profiles.iter().any(|q| q.name == p.name) {
                return Err(err(format!(
                    "policy {} names unknown profile {}",
                    policy.name, p.name
                )));
            }
        }
    }
    for profile in &config.profiles {
        for s in &profile.services {
            if !config.services.iter().any(|q| q.name == s.name) {
                return Err(err(format!(
                    "profile {} names unknown service {}",
                    profile.name, s.name
                )));
            }
        }
        for stage in profile.input_stages.iter().chain(&profile.response_stages) {
            for step in &stage.steps {
                if !config.processors.iter().any(|p| p.name == step.name) {
                    return Err(err(format!(
                        "profile {} stage {} names unknown processor {}",
                        profile.name, stage.name, step.name
                    )));
                }
            }
        }
        if !profile.response_stages.is_empty() {
            return Err(err(format!(
                "profile {}: responseStages are not modelled by the mock",
                profile.name
            )));
        }
    }
    for service in &config.services {
        if service.executor != "ollama" {
            return Err(err(format!(
                "service {}: executor {} is not modelled by the mock (ollama is)",
                service.name, service.executor
            )));
        }
        if !service.config.endpoint.starts_with("http://") {
            return Err(err(format!(
                "service {}: the mock calls http:// endpoints only",
                service.name
            )));
        }
    }
    for processor in &config.processors {
        if processor.name != "prompt-injection" {
            let used = config
                .profiles
                .iter()
                .flat_map(|p| &p.input_stages)
                .flat_map(|s| &s.steps)
                .any(|s| s.name == processor.name);
            if used {
                return Err(err(format!(
                    "processor {} is not modelled by the mock (prompt-injection is)",
                    processor.name
                )));
            }
        }
    }
    Ok(())
}
