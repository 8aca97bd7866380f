//! pnc's configuration: one TOML file, environment overrides, command-line flags.
//!
//! Precedence, lowest first: built-in defaults, the `--config` file, `PNC_…` environment
//! variables, flags. Every field has a safe default, so an empty file is a valid config.
//! Unknown fields are rejected with their name (a typo must not silently fall back to a
//! default). Secrets are never written inline: they are referenced by file path, and
//! [`Config::redacted`] hides anything secret-looking when the config is printed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::component::Component;

/// The whole configuration of a pnc process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the HTTP edge (gateway).
    pub listen: SocketAddr,
    /// Where the embedded database, the internal CA and the dev PKI live.
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; unset means SQLite files in `data_dir`.
    pub database_url: Option<String>,
    /// A file holding the database URL, for URLs that carry a password.
    pub database_url_file: Option<PathBuf>,
    /// The base URL under which clients reach this installation; used in the AIA OCSP
    /// and CRL distribution point URLs of certificates pnc issues.
    pub public_base_url: String,
    pub grpc: GrpcConfig,
    pub services: ServiceUrls,
    pub internal_tls: InternalTlsConfig,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    pub pki: PkiConfig,
    pub registry: RegistryConfig,
    pub truststore: TruststoreConfig,
    pub ocsp: OcspConfig,
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./pnc-data"),
            database_url: None,
            database_url_file: None,
            public_base_url: "http://127.0.0.1:8080".to_string(),
            grpc: GrpcConfig::default(),
            services: ServiceUrls::default(),
            internal_tls: InternalTlsConfig::default(),
            auth: AuthConfig::default(),
            http: HttpConfig::default(),
            pki: PkiConfig::default(),
            registry: RegistryConfig::default(),
            truststore: TruststoreConfig::default(),
            ocsp: OcspConfig::default(),
            log: LogConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Where a service started with `--only` listens. Unset: the component's default port
    /// (truststore 7001, registry 7002, ocsp 7003, provisioning 7004) on 127.0.0.1.
    /// In the all-in-one mode every service takes an ephemeral loopback port.
    pub listen: Option<SocketAddr>,
    /// Deadline of one call between services.
    pub request_timeout_ms: u64,
    /// How long a client waits for a TCP + TLS connection to another service.
    pub connect_timeout_ms: u64,
    /// How components running in one process (`pnc serve`) call each other.
    pub same_process_transport: SameProcessTransport,
}

/// [`GrpcConfig::same_process_transport`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SameProcessTransport {
    /// The callee's gRPC service is called directly: the same protobuf messages, caller
    /// allowlist, request ID and metrics, without TLS, HTTP/2 and sockets.
    #[default]
    InProcess,
    /// Over mTLS on loopback, exactly as between separate processes.
    Mtls,
}

impl Default for GrpcConfig {
    fn default() -> GrpcConfig {
        GrpcConfig {
            listen: None,
            request_timeout_ms: 10_000,
            connect_timeout_ms: 2_000,
            same_process_transport: SameProcessTransport::default(),
        }
    }
}

/// Where the other services are, as `https://host:port`. Unset: the component's default
/// port on 127.0.0.1, which is what `pnc serve --only …` processes on one host use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceUrls {
    pub truststore_url: Option<String>,
    pub registry_url: Option<String>,
    pub ocsp_url: Option<String>,
    pub provisioning_url: Option<String>,
}

impl ServiceUrls {
    pub fn url_of(&self, component: Component) -> String {
        let configured = match component {
            Component::Truststore => &self.truststore_url,
            Component::Registry => &self.registry_url,
            Component::Ocsp => &self.ocsp_url,
            Component::Provisioning => &self.provisioning_url,
            Component::Gateway => &None,
        };
        configured.clone().unwrap_or_else(|| {
            format!(
                "https://127.0.0.1:{}",
                component.default_grpc_port().unwrap_or(0)
            )
        })
    }

    pub fn set_url_of(&mut self, component: Component, url: String) {
        let slot = match component {
            Component::Truststore => &mut self.truststore_url,
            Component::Registry => &mut self.registry_url,
            Component::Ocsp => &mut self.ocsp_url,
            Component::Provisioning => &mut self.provisioning_url,
            Component::Gateway => return,
        };
        *slot = Some(url);
    }
}

/// The CA that authenticates pnc's components to each other. Unset: made on first start
/// in `data_dir/internal-ca`, shared by every process that uses the same data dir.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InternalTlsConfig {
    pub ca_cert_file: Option<PathBuf>,
    pub ca_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// PEM (PKCS#8) EC P-256 key the gateway signs access tokens with. Unset: made on
    /// first start in `data_dir`. Every gateway replica must use the same key.
    pub token_signing_key_file: Option<PathBuf>,
    /// Lifetime of an access token (OPCP: 24 h).
    pub token_ttl_seconds: u64,
    /// The `iss` claim and the `aud` tokens are issued for.
    pub issuer: String,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            token_signing_key_file: None,
            token_ttl_seconds: 86_400,
            issuer: "pnc".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Deadline of one HTTP request, end to end.
    pub request_timeout_ms: u64,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_ms: u64,
    /// How long a connection may take to deliver a request's head (HTTP/1), counted from
    /// when it starts waiting for one, so it also closes keep-alive connections idle that
    /// long. Bounds what a client that connects and sends nothing (or a byte a minute) holds.
    /// HTTP/2 connections (HTTPS) with no request in flight for this long are shut down
    /// gracefully (GOAWAY).
    pub header_read_timeout_ms: u64,
    /// Connections open at once, over the plain and the HTTPS listener together. A
    /// connection beyond them is closed as soon as it is accepted (so a load balancer
    /// tries another replica at once), and counted in `pnc_http_connections_refused_total`.
    /// Keep it under the process's file-descriptor limit, with room for the database and
    /// the services' own connections.
    pub max_connections: usize,
    /// Threads that serve the plain HTTP listener, each with an event loop and a listening
    /// socket of its own (SO_REUSEPORT: the kernel spreads connections over them), as nginx
    /// runs worker processes. 0 serves it on the shared runtime, whose workers pass
    /// connections' tasks between them.
    pub server_threads: usize,
    /// An HTTPS listener beside the plain one, for chargers and CSMSs that authenticate
    /// with client certificates (mTLS). Off unless `tls.listen` is set.
    pub tls: HttpTlsConfig,
}

/// The HTTPS edge. Clients may present a certificate issued by one of `client_ca_files`
/// (a charging-station CA, say); it then authenticates them like a token would, as role
/// `charger` with the operator ID from the subject's O attribute. Bearer tokens work on
/// this listener too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpTlsConfig {
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain of the edge, leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM (PKCS#8) private key of the edge.
    pub key_file: Option<PathBuf>,
    /// PEM files of the CAs whose client certificates are accepted.
    pub client_ca_files: Vec<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            request_timeout_ms: 15_000,
            shutdown_grace_ms: 20_000,
            header_read_timeout_ms: 30_000,
            max_connections: 10_000,
            server_threads: 0,
            tls: HttpTlsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PkiConfig {
    /// The 32-byte key-encryption key that protects private keys at rest. Unset: made on
    /// first start in `data_dir/pki/kek` (fine for a trial; put it elsewhere in production).
    pub kek_file: Option<PathBuf>,
    /// Issue pnc's MO Sub-CAs under its V2G root (as Hubject does) instead of an MO root.
    pub mo_sub_cas_under_v2g_root: bool,
    /// What an EV installation does when the OCSP status of a foreign OEM certificate cannot
    /// be had (responder down and nothing cached, or an `unknown` answer).
    pub revocation_unavailable: RevocationUnavailable,
}

/// [`PkiConfig::revocation_unavailable`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationUnavailable {
    /// Answer the EV and log a warning (soft fail, as browsers and most PKI clients do): an
    /// OEM responder outage must not stop every vehicle of that OEM from charging.
    #[default]
    Accept,
    /// Answer FAILED: no contract without a known-good status.
    Refuse,
}

/// The OCSP stapling cache and responder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcspConfig {
    /// How long a fetch waits for a TCP connection to an upstream responder.
    pub upstream_connect_timeout_ms: u64,
    /// Deadline of one upstream fetch, connection to last byte.
    pub upstream_timeout_ms: u64,
    /// Larger upstream responses are refused (OCPP 2.1 allows 18000 base64 characters).
    pub upstream_max_response_bytes: usize,
    /// Responder URLs an operator allows besides the AIA OCSP URLs of known CAs
    /// (exact URLs; empty by default).
    pub allowed_responder_urls: Vec<String>,
    /// How many OCSP responses the in-memory cache holds.
    pub cache_capacity: u64,
    /// thisUpdate → nextUpdate of the responses pnc signs for its own CAs.
    pub own_response_validity_seconds: u64,
    /// How long a signed answer for pnc's own CAs is reused before the issuance record is
    /// read again (bounds how late a revocation shows).
    pub own_answer_reuse_seconds: u64,
    /// thisUpdate → nextUpdate of the CRLs pnc signs for its own CAs.
    pub crl_validity_seconds: u64,
    /// How often the prefetcher refreshes cached responses and fetches those of known CAs
    /// and issued certificates. 0 disables it.
    pub prefetch_interval_seconds: u64,
    /// The gateway keeps final answers this long at most (never past nextUpdate);
    /// 0 disables the gateway's answer cache.
    pub gateway_answer_cache_seconds: u64,
}

impl Default for OcspConfig {
    fn default() -> OcspConfig {
        OcspConfig {
            upstream_connect_timeout_ms: 2_000,
            upstream_timeout_ms: 5_000,
            upstream_max_response_bytes: 64 * 1024,
            allowed_responder_urls: Vec::new(),
            cache_capacity: 100_000,
            own_response_validity_seconds: 4 * 3600,
            own_answer_reuse_seconds: 60,
            crl_validity_seconds: 24 * 3600,
            prefetch_interval_seconds: 60,
            gateway_answer_cache_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TruststoreConfig {
    /// How often the expiry watch marks roots past notAfter as expired (and emits
    /// `root.cert.expired`); it also runs at start. At least 1.
    pub expiry_watch_interval_seconds: u64,
}

impl Default for TruststoreConfig {
    fn default() -> TruststoreConfig {
        TruststoreConfig {
            expiry_watch_interval_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Refuse eMAIDs whose 15th character is not the eMI3 check digit.
    pub enforce_emaid_check_digit: bool,
    /// URL prefixes webhook deliveries may go to (e.g. `https://hooks.example.com/`).
    /// Subscribers choose their URLs, so pnc only calls those an operator allowed; empty
    /// (the default) refuses every delivery, with a log line naming the URL.
    pub webhook_allowed_url_prefixes: Vec<String>,
    /// Attempts per delivery before it is marked failed.
    pub webhook_max_attempts: u32,
    /// Delay before the first retry; doubled on each further one, capped at one hour.
    pub webhook_retry_base_ms: u64,
    /// Connect and whole-request timeout of one delivery attempt.
    pub webhook_timeout_ms: u64,
    /// How often the dispatcher looks for due deliveries and new root events.
    pub webhook_poll_interval_ms: u64,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            enforce_emaid_check_digit: false,
            webhook_allowed_url_prefixes: Vec::new(),
            webhook_max_attempts: 4,
            webhook_retry_base_ms: 60_000,
            webhook_timeout_ms: 5_000,
            webhook_poll_interval_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `pnc_gateway=debug,info`. `RUST_LOG` wins if set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration error, naming what is wrong. `pnc` exits with status 2 on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config in {origin}: {message}")]
    Invalid { origin: String, message: String },
}

const ENV_PREFIX: &str = "PNC_";

impl Config {
    /// Reads the optional TOML file and applies `PNC_…` overrides from `env`.
    ///
    /// `PNC_LISTEN` sets `listen`; `PNC_HTTP__MAX_BODY_BYTES` sets `http.max_body_bytes`
    /// (a double underscore separates sections). Values are read as TOML scalars when they
    /// parse as one, as strings otherwise. An unknown variable is an error, like an unknown
    /// field in the file.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (mut table, origin) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let table =
                    toml::from_str::<toml::Table>(&text).map_err(|error| ConfigError::Invalid {
                        origin: path.display().to_string(),
                        message: error.message().to_string(),
                    })?;
                (table, path.display().to_string())
            }
            None => (toml::Table::new(), "defaults".to_string()),
        };
        // Check the file on its own first, so an error names the file, not the environment.
        Self::from_table(table.clone(), &origin)?;

        let overrides: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        if overrides.is_empty() {
            return Self::from_table(table, &origin);
        }
        for (name, raw_value) in &overrides {
            let path: Vec<String> = name[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            insert_override(&mut table, &path, parse_scalar(raw_value)).map_err(|message| {
                ConfigError::Invalid {
                    origin: format!("environment variable {name}"),
                    message,
                }
            })?;
        }
        let names: Vec<&str> = overrides.keys().map(String::as_str).collect();
        Self::from_table(table, &format!("{origin} with {}", names.join(", ")))
    }

    fn from_table(table: toml::Table, origin: &str) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let config = Config::deserialize(table).map_err(|error| invalid(error.message().into()))?;
        config.check_ranges().map_err(invalid)?;
        Ok(config)
    }

    /// Values the types admit but the server cannot work with.
    fn check_ranges(&self) -> Result<(), String> {
        if self.http.header_read_timeout_ms == 0 {
            return Err(
                "http.header_read_timeout_ms must be at least 1: with 0 every \
                connection would time out before its first request"
                    .to_string(),
            );
        }
        if self.http.max_connections == 0 {
            return Err(
                "http.max_connections must be at least 1: with 0 every connection \
                would be closed unanswered"
                    .to_string(),
            );
        }
        Ok(())
    }

    /// The database URL in force: the inline one, or the content of `database_url_file`.
    pub fn effective_database_url(&self) -> Result<Option<String>, ConfigError> {
        if let Some(url) = &self.database_url {
            return Ok(Some(url.clone()));
        }
        let Some(path) = &self.database_url_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Some(text.trim().to_string()))
    }

    /// The config as TOML with secrets replaced by `redacted`.
    pub fn redacted(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = shown.database_url.as_deref().map(redact_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|error| format!("# unprintable: {error}"))
    }
}

/// Replaces the password (and a user that looks like a key) of a URL with `redacted`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("redacted"));
            }
            // Query parameters such as `password=` or `sslkey=` are secrets too.
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(key, value)| {
                    let secret = ["password", "pass", "key", "secret", "token"]
                        .iter()
                        .any(|word| key.to_ascii_lowercase().contains(word));
                    let value = if secret {
                        "redacted".to_string()
                    } else {
                        value.into_owned()
                    };
                    (key.into_owned(), value)
                })
                .collect();
            if !pairs.is_empty() {
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        // Not a URL we can take apart: show nothing of it.
        Err(_) => "redacted".to_string(),
    }
}

fn parse_scalar(raw: &str) -> toml::Value {
    let probe = format!("value = {raw}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut table) => match table.remove("value") {
            Some(value @ (toml::Value::Integer(_) | toml::Value::Boolean(_))) => value,
            Some(toml::Value::Array(items)) => toml::Value::Array(items),
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn insert_override(
    table: &mut toml::Table,
    path: &[String],
    value: toml::Value,
) -> Result<(), String> {
    match path {
        [] => Err("empty variable name".to_string()),
        [field] => {
            table.insert(field.clone(), value);
            Ok(())
        }
        [section, rest @ ..] => {
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => insert_override(inner, rest, value),
                _ => Err(format!("`{section}` is not a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write");
        file
    }

    #[test]
    fn ok_no_file_gives_defaults() {
        let config = Config::load(None, env(&[])).expect("defaults load");
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./pnc-data"));
    }

    #[test]
    fn ok_file_then_env_then_defaults() {
        let file = write("listen = \"127.0.0.1:9000\"\n[http]\nmax_body_bytes = 10\n");
        let config = Config::load(
            Some(file.path()),
            env(&[
                ("PNC_HTTP__MAX_BODY_BYTES", "20"),
                ("PNC_REGISTRY__ENFORCE_EMAID_CHECK_DIGIT", "true"),
                ("HOME", "/root"),
            ]),
        )
        .expect("load");
        assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(config.http.max_body_bytes, 20);
        assert!(config.registry.enforce_emaid_check_digit);
        assert_eq!(config.http.request_timeout_ms, 15_000);
    }

    #[test]
    fn fail_unknown_field_is_named() {
        let file = write("[http]\nmax_body_byte = 10\n");
        let error = Config::load(Some(file.path()), env(&[])).expect_err("must fail");
        let text = error.to_string();
        assert!(text.contains("max_body_byte"), "{text}");
    }

    /// Limits whose zero would make the server useless are refused, with the variable and
    /// the field named; 1 is a value.
    #[test]
    fn fail_zero_http_limits_are_named() {
        for (variable, field) in [
            ("PNC_HTTP__HEADER_READ_TIMEOUT_MS", "header_read_timeout_ms"),
            ("PNC_HTTP__MAX_CONNECTIONS", "max_connections"),
        ] {
            let text = Config::load(None, env(&[(variable, "0")]))
                .expect_err("0 must be refused")
                .to_string();
            assert!(text.contains(variable), "{text}");
            assert!(
                text.contains(&format!("{field} must be at least 1")),
                "{text}"
            );
            Config::load(None, env(&[(variable, "1")])).expect("1 is a value");
        }
        let http = Config::default().http;
        assert_eq!(
            (http.header_read_timeout_ms, http.max_connections),
            (30_000, 10_000)
        );
    }

    #[test]
    fn fail_wrong_type_is_named() {
        let file = write("listen = 8080\n");
        let text = Config::load(Some(file.path()), env(&[]))
            .expect_err("must fail")
            .to_string();
        assert!(
            text.contains("listen") || text.contains("invalid type"),
            "{text}"
        );
    }

    #[test]
    fn fail_unknown_env_variable_is_named() {
        let error = Config::load(None, env(&[("PNC_LISTN", "1.2.3.4:5")])).expect_err("must fail");
        let text = error.to_string();
        assert!(text.contains("listn"), "{text}");
        assert!(text.contains("PNC_LISTN"), "{text}");
    }

    #[test]
    fn ok_redacted_hides_database_password() {
        let config = Config {
            database_url: Some("postgres://pnc:hunter2@db:5432/pnc?sslpassword=x".into()),
            ..Config::default()
        };
        let printed = config.redacted();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("redacted"), "{printed}");
        assert!(
            printed.contains("postgres://pnc:redacted@db:5432/pnc"),
            "{printed}"
        );
    }

    #[test]
    fn ok_service_urls_default_to_component_ports() {
        let urls = ServiceUrls::default();
        assert_eq!(urls.url_of(Component::Ocsp), "https://127.0.0.1:7003");
    }
}
