//! The Open `WebUI` stand-in: what a browser and a probe see of Open `WebUI`.
//!
//! `/` is the SPA shell titled "Open `WebUI`"; `/health`, `/api/version` and
//! `/api/config` answer as Open `WebUI` does; `/api/v1/auths/signin` implements
//! trusted-header login (`WEBUI_AUTH_TRUSTED_EMAIL_HEADER`); `/api/chat/completions`
//! forwards to the OpenAI-compatible backend in `OPENAI_API_BASE_URL`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

use super::{MockContext, json_response, openai_error, text_response};
use crate::net;

pub(crate) const VERSION: &str = "0.0.0-mtls-e2e";

const INDEX: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Open WebUI</title>
<script src="/static/loader.js" defer></script>
</head>
<body><div id="app">Open WebUI stand-in (mtls-e2e)</div></body>
</html>
"#;

pub(crate) struct WebUi {
    name: String,
    trusted_email_header: Option<String>,
    openai_base_url: Option<String>,
    ctx: MockContext,
}

impl WebUi {
    pub(crate) fn new(ctx: &MockContext) -> Self {
        let env = |k: &str| ctx.env.get(k).filter(|v| !v.is_empty()).cloned();
        // WEBUI_NAME other than the default becomes "<name> (Open WebUI)", as in env.py.
        let name = match env("WEBUI_NAME") {
            Some(n) if n != "Open WebUI" => format!("{n} (Open WebUI)"),
            _ => "Open WebUI".to_string(),
        };
        WebUi {
            name,
            trusted_email_header: env("WEBUI_AUTH_TRUSTED_EMAIL_HEADER"),
            openai_base_url: env("OPENAI_API_BASE_URL"),
            ctx: ctx.clone(),
        }
    }

    pub(crate) async fn handle(
        &self,
        request: hyper::Request<Incoming>,
    ) -> hyper::Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        match (request.method().as_str(), path.as_str()) {
            ("GET", "/health") => json_response(200, &json!({"status": true})),
            ("GET", "/api/version") => json_response(200, &json!({"version": VERSION})),
            ("GET", "/api/config") => json_response(200, &self.config()),
            ("POST", "/api/v1/auths/signin") => self.signin(&request),
            ("POST", "/api/chat/completions") => self.chat(request).await,
            ("GET", p) if !p.starts_with("/api/") => {
                text_response(200, "text/html; charset=utf-8", INDEX)
            }
            _ => json_response(404, &json!({"detail": "Not Found"})),
        }
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "status": true,
            "name": self.name,
            "version": VERSION,
            "default_locale": "",
            "oauth": {"providers": {}},
            "features": {
                "auth": true,
                "auth_trusted_header": self.trusted_email_header.is_some(),
                "enable_signup": true,
                "enable_login_form": true,
                "enable_ldap": false,
                "enable_websocket": true
            }
        })
    }

    /// Trusted-header login: the header names the user (lower-cased, as Open `WebUI`
    /// does); without it, Open `WebUI` answers 400 with this exact text.
    fn signin(&self, request: &hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let Some(header) = &self.trusted_email_header else {
            return json_response(
                400,
                &json!({"detail": "The email or password provided is incorrect. Please check for typos and try logging in again."}),
            );
        };
        let Some(value) = request
            .headers()
            .get(header.as_str())
            .and_then(|v| v.to_str().ok())
        else {
            return json_response(
                400,
                &json!({"detail": "Your provider has not provided a trusted header. Please contact your administrator for assistance."}),
            );
        };
        let email = value.to_lowercase();
        json_response(
            200,
            &json!({
                "token": "mtls-e2e-mock-token",
                "token_type": "Bearer",
                "expires_at": null,
                "id": format!("user-{}", email.len()),
                "email": email,
                "name": value,
                "role": "user",
                "profile_image_url": "/user.png",
                "permissions": {}
            }),
        )
    }

    async fn chat(&self, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let Some(base) = &self.openai_base_url else {
            return openai_error(
                500,
                "api_error",
                "no_backend",
                "OPENAI_API_BASE_URL is not set",
            );
        };
        let body = match net::read_body(request.into_body()).await {
            Ok(b) => b,
            Err(e) => return openai_error(400, "invalid_request_error", "body", &e),
        };
        let url = format!("{}/chat/completions", base.trim_end_matches('/'));
        let headers = [("content-type", "application/json".to_string())];
        match net::http_call(
            &self.ctx.resolver,
            "POST",
            &url,
            &headers,
            body,
            Duration::from_secs(60),
        )
        .await
        {
            Ok(answer) => {
                let content_type = answer
                    .headers
                    .get("content-type")
                    .cloned()
                    .unwrap_or_else(|| "application/json".into());
                text_response(answer.status, &content_type, answer.body)
            }
            Err(e) => openai_error(502, "api_error", "backend", &format!("{url}: {e}")),
        }
    }
}
