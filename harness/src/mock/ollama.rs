//! The Ollama stand-in: `/api/chat` (streaming NDJSON by default, as Ollama
//! does), `/api/tags`, `/api/version`. It answers any model, naming it in the
//! reply, so a check can see which model the gateway asked for.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{MockContext, json_response, text_response};
use crate::net;

pub(crate) struct Ollama;

impl Ollama {
    pub(crate) fn new(_ctx: &MockContext) -> Self {
        Ollama
    }

    pub(crate) async fn handle(
        &self,
        request: hyper::Request<Incoming>,
    ) -> hyper::Response<Full<Bytes>> {
        match (request.method().as_str(), request.uri().path()) {
            ("GET", "/") => text_response(200, "text/plain; charset=utf-8", "Ollama is running"),
            ("GET", "/api/version") => json_response(200, &json!({"version": "0.0.0-mtls-e2e"})),
            ("GET", "/api/tags") => json_response(200, &json!({"models": []})),
            ("POST", "/api/chat") => match net::read_body(request.into_body()).await {
                Ok(body) => chat(&body),
                Err(e) => json_response(400, &json!({"error": e})),
            },
            _ => text_response(404, "text/plain", "404 page not found"),
        }
    }
}

/// The reply text for a conversation: deterministic, naming the model.
pub(crate) fn reply_text(model: &str, messages: &[Value]) -> String {
    let last = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content").and_then(Value::as_str))
        .unwrap_or("");
    format!("[{model}] You said: {last}")
}

fn chat(body: &[u8]) -> hyper::Response<Full<Bytes>> {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return json_response(400, &json!({"error": format!("invalid JSON: {e}")})),
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return json_response(400, &json!({"error": "model is required"}));
    };
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let content = reply_text(model, &messages);
    let created_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let prompt_tokens = messages.len() as u64 * 8;
    let completion_tokens = content.split_whitespace().count() as u64;
    let done = json!({
        "model": model,
        "created_at": created_at,
        "message": {"role": "assistant", "content": ""},
        "done": true,
        "done_reason": "stop",
        "total_duration": 1_000_000u64,
        "load_duration": 1_000u64,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": 100_000u64,
        "eval_count": completion_tokens,
        "eval_duration": 800_000u64
    });
    // Ollama streams by default: one JSON object per line, the last with done: true.
    if request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(true)
    {
        let chunk = json!({"model": model, "created_at": created_at, "message": {"role": "assistant", "content": content}, "done": false});
        let text = format!("{chunk}\n{done}\n");
        return text_response(200, "application/x-ndjson", text);
    }
    let mut whole = done;
    whole["message"]["content"] = json!(content);
    json_response(200, &whole)
}
