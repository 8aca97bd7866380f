//! Fetching from upstream OCSP responders: only URLs the caller has already checked against
//! the allowlist, with connect and total deadlines, no redirects, no proxy, and a cap on
//! the response size (docs/ecosystem-apis.md §8.3).

use std::time::Duration;

use pnc_common::config::OcspConfig;

/// Why a fetch failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("{0}")]
    Transport(String),
    #[error("responder answered HTTP {0}")]
    HttpStatus(u16),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("responder did not answer within {0} ms")]
    Timeout(u64),
}

/// The HTTP client for upstream responders.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    max_response_bytes: usize,
    timeout_ms: u64,
}

/// Normalises a responder URL for comparison (scheme and host case, default port, empty
/// path); `None` for anything but an absolute http(s) URL.
pub fn normalize_url(raw: &str) -> Option<String> {
    let parsed = url::Url::parse(raw.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return None;
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return None;
    }
    let mut text = parsed.to_string();
    // `http://host/ocsp/` and `http://host/ocsp` name the same responder in practice.
    if text.ends_with('/') && parsed.path() != "/" {
        text.pop();
    }
    Some(text)
}

impl UpstreamClient {
    pub fn new(config: &OcspConfig) -> Result<UpstreamClient, FetchError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_millis(config.upstream_connect_timeout_ms))
            .timeout(Duration::from_millis(config.upstream_timeout_ms))
            .pool_max_idle_per_host(4)
            .user_agent("pnc-ocsp")
            .build()
            .map_err(|error| FetchError::Client(error.to_string()))?;
        Ok(UpstreamClient {
            http,
            max_response_bytes: config.upstream_max_response_bytes,
            timeout_ms: config.upstream_timeout_ms,
        })
    }

    /// POSTs `request_der` to `url` (RFC 6960 Appendix A.1) and returns the body.
    pub async fn fetch(&self, url: &str, request_der: Vec<u8>) -> Result<Vec<u8>, FetchError> {
        let work = async {
            let mut response = self
                .http
                .post(url)
                .header(http::header::CONTENT_TYPE, "application/ocsp-request")
                .header(http::header::ACCEPT, "application/ocsp-response")
                .body(request_der)
                .send()
                .await
                .map_err(|error| FetchError::Transport(describe(&error)))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(FetchError::HttpStatus(response.status().as_u16()));
            }
            if response
                .content_length()
                .is_some_and(|length| length > self.max_response_bytes as u64)
            {
                return Err(FetchError::TooLarge(self.max_response_bytes));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|error| FetchError::Transport(describe(&error)))?
            {
                if body.len() + chunk.len() > self.max_response_bytes {
                    return Err(FetchError::TooLarge(self.max_response_bytes));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        // reqwest's timeout covers the body too; this outer one is the hard bound.
        tokio::time::timeout(Duration::from_millis(self.timeout_ms + 500), work)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout_ms))?
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "responder timed out".to_string()
    } else if error.is_connect() {
        "cannot connect to the responder".to_string()
    } else {
        format!("transport error: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_normalized_forms_compare_equal() {
        assert_eq!(
            normalize_url("HTTP://Example.COM:80/ocsp/"),
            normalize_url("http://example.com/ocsp")
        );
        assert_eq!(
            normalize_url("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080/")
        );
    }

    #[test]
    fn fail_non_http_and_credentials() {
        assert_eq!(normalize_url("file:///etc/passwd"), None);
        assert_eq!(normalize_url("gopher://x/"), None);
        assert_eq!(normalize_url("http://user:pw@host/"), None);
        assert_eq!(normalize_url("not a url"), None);
    }
}
