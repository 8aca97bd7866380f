//! API clients: OAuth2 client credentials and the role and scope each client has.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pnc_common::PncError;
use pnc_common::db::{Database, map_sqlx_error, unix_now};
use pnc_proto::principal::{Principal, Role};
use pnc_proto::registry::v1::{
    AuthenticateClientRequest, AuthenticateClientResponse, CreateClientRequest,
    CreateClientResponse, client_registry_server::ClientRegistry,
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;
use tonic::{Request, Response, Status};

/// What a new client may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    pub name: String,
    pub role: Role,
    pub wmis: Vec<String>,
    pub provider_ids: Vec<String>,
    pub operator_ids: Vec<String>,
}

/// A client's credentials, shown once at creation.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"redacted")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct ClientStore {
    database: Database,
}

impl NewClient {
    /// Checks the scope fits the role and normalises scope values.
    pub fn validated(mut self) -> Result<NewClient, PncError> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(PncError::invalid("client name must be 1 to 200 characters"));
        }
        self.name = name.to_string();
        for wmi in &mut self.wmis {
            if wmi.len() != 3 || !wmi.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PncError::invalid(format!(
                    "WMI `{wmi}` must be 3 letters or digits"
                )));
            }
            *wmi = wmi.to_ascii_uppercase();
        }
        for provider in &mut self.provider_ids {
            // Country (2 letters) + provider ID (3 alphanumerics), with an optional separator.
            let compact: String = provider
                .chars()
                .filter(|c| *c != '-' && *c != '*')
                .collect::<String>()
                .to_ascii_uppercase();
            let valid = compact.len() == 5
                && compact[..2].chars().all(|c| c.is_ascii_alphabetic())
                && compact[2..].chars().all(|c| c.is_ascii_alphanumeric());
            if !valid {
                return Err(PncError::invalid(format!(
                    "provider ID `{provider}` must be a country code and a 3-character provider, e.g. DE-PNC"
                )));
            }
            *provider = compact;
        }
        for operator in &mut self.operator_ids {
            let compact: String = operator
                .chars()
                .filter(|c| *c != '*' && *c != '-')
                .collect::<String>()
                .to_ascii_uppercase();
            if compact.len() != 5 || !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PncError::invalid(format!(
                    "operator ID `{operator}` must look like DE*PNC or DEPNC"
                )));
            }
            *operator = compact;
        }
        let scope_fits = match self.role {
            Role::Admin => true,
            Role::Oem => !self.wmis.is_empty(),
            Role::Emsp => !self.provider_ids.is_empty(),
            Role::Cpo | Role::Charger => true,
            Role::Unspecified => false,
        };
        if !scope_fits {
            return Err(PncError::invalid(match self.role {
                Role::Oem => "an oem client needs at least one --wmi",
                Role::Emsp => "an emsp client needs at least one --provider-id",
                _ => "a client needs a role: admin, oem, emsp, cpo or charger",
            }));
        }
        Ok(self)
    }
}

impl ClientStore {
    pub fn new(database: Database) -> ClientStore {
        ClientStore { database }
    }

    /// Registers a client; the secret is returned here and never again.
    pub async fn create(&self, client: NewClient) -> Result<Credentials, PncError> {
        let client = client.validated()?;
        let client_id = random_token(24);
        let client_secret = random_token(32);
        let secret_hash = Sha256::digest(client_secret.as_bytes()).to_vec();
        sqlx::query(
            "INSERT INTO api_clients (client_id, name, role, secret_sha256, wmis, provider_ids, \
             operator_ids, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)",
        )
        .bind(&client_id)
        .bind(&client.name)
        .bind(client.role.name())
        .bind(secret_hash)
        .bind(json_list(&client.wmis))
        .bind(json_list(&client.provider_ids))
        .bind(json_list(&client.operator_ids))
        .bind(unix_now())
        .execute(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        tracing::info!(client_id = %client_id, role = client.role.name(), "api client created");
        Ok(Credentials {
            client_id,
            client_secret,
        })
    }

    /// The principal of a client whose secret matches; one error for every mismatch, so
    /// the answer does not tell whether the client exists.
    pub async fn authenticate(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<(Principal, String), PncError> {
        let rejected = || PncError::unauthenticated("invalid client credentials");
        if client_id.is_empty() || client_id.len() > 128 || client_secret.len() > 256 {
            return Err(rejected());
        }
        let row = sqlx::query(
            "SELECT name, role, secret_sha256, wmis, provider_ids, operator_ids, disabled \
             FROM api_clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        let presented = Sha256::digest(client_secret.as_bytes());
        let Some(row) = row else {
            // Same work as a hit, so timing does not reveal which client IDs exist.
            let _ = presented.as_slice().ct_eq(&[0u8; 32]);
            return Err(rejected());
        };
        let stored: Vec<u8> = row.try_get("secret_sha256").map_err(map_sqlx_error)?;
        let disabled: i64 = row.try_get("disabled").map_err(map_sqlx_error)?;
        if !bool::from(presented.as_slice().ct_eq(stored.as_slice())) || disabled != 0 {
            return Err(rejected());
        }
        let role_name: String = row.try_get("role").map_err(map_sqlx_error)?;
        let role = Role::from_name(&role_name)
            .ok_or_else(|| PncError::internal(format!("stored role `{role_name}` unknown")))?;
        let principal = Principal {
            client_id: client_id.to_string(),
            role: role as i32,
            wmis: parse_list(&row.try_get::<String, _>("wmis").map_err(map_sqlx_error)?),
            provider_ids: parse_list(
                &row.try_get::<String, _>("provider_ids")
                    .map_err(map_sqlx_error)?,
            ),
            operator_ids: parse_list(
                &row.try_get::<String, _>("operator_ids")
                    .map_err(map_sqlx_error)?,
            ),
        };
        let name: String = row.try_get("name").map_err(map_sqlx_error)?;
        Ok((principal, name))
    }
}

fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The gRPC face of the client store.
#[derive(Debug)]
pub struct ClientRegistryService {
    store: ClientStore,
}

impl ClientRegistryService {
    pub fn new(store: ClientStore) -> ClientRegistryService {
        ClientRegistryService { store }
    }
}

#[tonic::async_trait]
impl ClientRegistry for ClientRegistryService {
    async fn create_client(
        &self,
        request: Request<CreateClientRequest>,
    ) -> Result<Response<CreateClientResponse>, Status> {
        let request = request.into_inner();
        let role = Role::try_from(request.role).unwrap_or(Role::Unspecified);
        let credentials = self
            .store
            .create(NewClient {
                name: request.name,
                role,
                wmis: request.wmis,
                provider_ids: request.provider_ids,
                operator_ids: request.operator_ids,
            })
            .await?;
        Ok(Response::new(CreateClientResponse {
            client_id: credentials.client_id,
            client_secret: credentials.client_secret,
        }))
    }

    async fn authenticate_client(
        &self,
        request: Request<AuthenticateClientRequest>,
    ) -> Result<Response<AuthenticateClientResponse>, Status> {
        let request = request.get_ref();
        let (principal, name) = self
            .store
            .authenticate(&request.client_id, &request.client_secret)
            .await?;
        Ok(Response::new(AuthenticateClientResponse {
            principal: Some(principal),
            name,
        }))
    }
}
