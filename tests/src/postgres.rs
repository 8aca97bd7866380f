//! Fresh PostgreSQL databases for tests.
//!
//! Tests use the server at `PNC_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, what `.ci/run` starts). Each test gets
//! its own database, dropped when the guard goes, so tests run in parallel.

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

/// The admin URL of the test server.
pub fn server_url() -> String {
    std::env::var("PNC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database that exists while this value lives.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates `pnc_test_<random>`. Fails the test with a clear message when the server
    /// is down: these tests must not silently pass.
    pub async fn create() -> TestDatabase {
        sqlx::any::install_default_drivers();
        let admin_url = server_url();
        let name = format!("pnc_test_{}", uuid::Uuid::new_v4().simple());
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .unwrap_or_else(|error| {
                panic!("PostgreSQL at {admin_url} is needed for this test (start it, or set PNC_TEST_POSTGRES_URL): {error}")
            });
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        admin.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => format!("{admin_url}/{name}"),
        };
        TestDatabase { name, url }
    }
}

impl TestDatabase {
    /// Drops the database now, terminating its connections.
    pub async fn drop_now(&self) {
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&server_url())
            .await
            .expect("admin connection");
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .expect("drop database");
        admin.close().await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = server_url();
        // Drop from a separate thread with its own runtime: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin_url)
                    .await
                {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}
