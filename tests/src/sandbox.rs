//! Every pnc component in this test process, on ephemeral loopback ports.

use std::net::SocketAddr;

use pnc_common::config::Config;
use pnc_common::runtime::ValidityClock;
use pnc_proto::principal::Role;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::postgres::TestDatabase;

/// Which storage a sandbox runs on. Storage-facing tests run on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];
}

/// A running pnc: all components, a temporary data dir, an HTTP client.
pub struct Sandbox {
    pub backend: Backend,
    pub base_url: String,
    pub http: reqwest::Client,
    pub config: Config,
    pub data_dir: tempfile::TempDir,
    shutdown: CancellationToken,
    running: Option<pnc::serve::Running>,
    _database: Option<TestDatabase>,
}

/// Credentials and a token of an API client made in a sandbox.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub client_id: String,
    pub client_secret: String,
    pub token: String,
}

impl Sandbox {
    /// Starts every component with default config on `backend`.
    pub async fn start(backend: Backend) -> Sandbox {
        Sandbox::start_with(backend, |_| {}).await
    }

    /// Starts every component; `adjust` may change the config first.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Sandbox {
        Sandbox::start_with_clock(backend, ValidityClock::system(), adjust).await
    }

    /// Starts every component judging certificate validity at `validity_clock`, for
    /// fixtures with fixed dates (published examples); everything else runs on real time.
    pub async fn start_with_clock(
        backend: Backend,
        validity_clock: ValidityClock,
        adjust: impl FnOnce(&mut Config),
    ) -> Sandbox {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.path().to_path_buf(),
            database_url: database.as_ref().map(|database| database.url.clone()),
            ..Config::default()
        };
        adjust(&mut config);
        let shutdown = CancellationToken::new();
        let running =
            pnc::serve::start_all_with_clock(config.clone(), shutdown.clone(), validity_clock)
                .await
                .expect("sandbox starts");
        let gateway = running
            .address_of(pnc_common::Component::Gateway)
            .expect("gateway address");
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("http client");
        Sandbox {
            backend,
            base_url: format!("http://{gateway}"),
            http,
            config: (*running.config).clone(),
            data_dir,
            shutdown,
            running: Some(running),
            _database: database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The storage the sandbox's components use, for tests that open a service's store
    /// directly (as `pnc client add` does).
    pub fn storage(&self) -> pnc_common::db::StorageLocation {
        pnc_common::cli::storage_of(&self.config).expect("storage")
    }

    /// Registers an API client directly in the registry's store (as `pnc client add`
    /// does) and fetches a token for it through `/oauth/token`.
    pub async fn client(
        &self,
        role: Role,
        wmis: &[&str],
        provider_ids: &[&str],
        operator_ids: &[&str],
    ) -> TestClient {
        let database = pnc_registry_database(&self.storage()).await;
        let store = pnc_registry::clients::ClientStore::new(database);
        let credentials = store
            .create(pnc_registry::clients::NewClient {
                name: format!("test {}", role.name()),
                role,
                wmis: wmis.iter().map(|s| s.to_string()).collect(),
                provider_ids: provider_ids.iter().map(|s| s.to_string()).collect(),
                operator_ids: operator_ids.iter().map(|s| s.to_string()).collect(),
            })
            .await
            .expect("create client");
        let token = self
            .token(&credentials.client_id, &credentials.client_secret)
            .await;
        TestClient {
            client_id: credentials.client_id,
            client_secret: credentials.client_secret,
            token,
        }
    }

    /// An admin client.
    pub async fn admin(&self) -> TestClient {
        self.client(Role::Admin, &[], &[], &[]).await
    }

    /// A token through `/oauth/token` (JSON body).
    pub async fn token(&self, client_id: &str, client_secret: &str) -> String {
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .json(&serde_json::json!({
                "client_id": client_id,
                "client_secret": client_secret,
                "audience": "https://pnc.test",
                "grant_type": "client_credentials",
            }))
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 200, "token endpoint");
        let body: Value = response.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Makes the database vanish under the running components (PostgreSQL only): its
    /// connections are killed and reconnecting fails, as in an outage.
    pub async fn break_database(&self) {
        let database = self
            ._database
            .as_ref()
            .expect("break_database needs the PostgreSQL backend");
        database.drop_now().await;
    }

    /// Stops every component and waits for them.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.expect("components stop cleanly");
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn pnc_registry_database(
    storage: &pnc_common::db::StorageLocation,
) -> pnc_common::db::Database {
    pnc_registry::open_database(storage)
        .await
        .expect("registry database")
}
