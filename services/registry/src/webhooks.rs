//! Webhook subscriptions (OPCP webhooks.v1.json) and the dispatcher that delivers them.
//!
//! Deliveries are rows of `webhook_deliveries`, queued in the transaction of the change
//! that caused them ([`crate::events`]) or, for root events, copied from the truststore's
//! change feed. The dispatcher claims due rows with a conditional UPDATE (a row whose
//! `claimed_until` is in the past), so several replicas on one PostgreSQL never send the
//! same attempt twice; on SQLite the same statement runs under the single writer lock.
//!
//! Subscribers choose their URLs, so pnc sends only to URLs under a prefix the operator
//! allowed (`registry.webhook_allowed_url_prefixes`), never follows redirects, and bounds
//! connect time, total time and the size of the answer it reads.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use pnc_common::PncError;
use pnc_common::config::RegistryConfig;
use pnc_common::db::{map_sqlx_error, unix_now};
use pnc_common::ids::Wmi;
use pnc_proto::principal::{Principal, Role};
use pnc_proto::registry::v1::webhooks_server::Webhooks;
use pnc_proto::registry::v1::{
    ListWebhookDeliveriesRequest, ListWebhookDeliveriesResponse, ListWebhookEndpointsRequest,
    ListWebhookEndpointsResponse, UpdateWebhookEndpointRequest, WebhookDelivery, WebhookEndpoint,
    WebhookEndpointId, WebhookEndpointInput,
};
use pnc_proto::truststore::v1::ListEventsRequest;
use rand::RngCore;
use serde_json::json;
use sha2::Sha256;
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::RegistryCore;
use crate::access::Caller;
use crate::audit::AuditedTransaction;
use crate::events::{Audience, Event, canonical_event_type};

const ENDPOINT_COLUMNS: &str = "endpoint_id, owner_client_id, owner_name, owner_role, wmis, \
     provider_ids, url, enabled_events, api_version, description, metadata_json, status, \
     created_at";
const DELIVERY_COLUMNS: &str = "delivery_id, endpoint_id, event_id, event_type, body, status, \
     attempts, next_attempt_at, last_status_code, last_error, created_at, delivered_at";
const MAX_URL_LENGTH: usize = 2048;
const MAX_ENDPOINTS_PER_CLIENT: i64 = 50;
/// The subscriber's answer is read up to this many bytes and then dropped.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const MAX_RETRY_DELAY_SECONDS: u64 = 3600;
const CLAIM_BATCH: i64 = 16;

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Whether `url` lies under one of the operator's prefixes. A prefix matches at a path
/// boundary only: `http://127.0.0.1:80` does not allow `http://127.0.0.1:8080/`.
pub fn url_allowed(url: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|prefix| {
        !prefix.is_empty()
            && url.starts_with(prefix.as_str())
            && (prefix.ends_with('/')
                || matches!(
                    url.as_bytes().get(prefix.len()),
                    None | Some(b'/' | b'?' | b'#')
                ))
    })
}

struct ValidatedInput {
    url: String,
    enabled_events: Vec<String>,
    api_version: String,
    description: String,
    metadata_json: String,
    status: String,
}

/// The WMIs an endpoint gets OEM events for: the subscriber's, or the OPNC `wmi` filter,
/// which only narrows an OEM's own WMIs.
fn subscribed_wmis(principal: &Principal, filter: &[String]) -> Result<Vec<String>, PncError> {
    if filter.is_empty() {
        return Ok(principal.wmis.clone());
    }
    if Role::try_from(principal.role).ok() != Some(Role::Oem) {
        return Err(PncError::invalid(
            "wmi filters an OEM's events; other subscribers cannot set it",
        ));
    }
    if filter.len() > 100 {
        return Err(PncError::invalid("wmi lists at most 100 WMIs"));
    }
    let mut wmis: Vec<String> = Vec::new();
    for given in filter {
        let wmi = Wmi::parse(given)?;
        if !principal
            .wmis
            .iter()
            .any(|granted| granted.eq_ignore_ascii_case(wmi.as_str()))
        {
            return Err(PncError::permission_denied(format!(
                "WMI {wmi} is not one of this client's WMIs"
            )));
        }
        if !wmis.iter().any(|seen| seen == wmi.as_str()) {
            wmis.push(wmi.as_str().to_string());
        }
    }
    Ok(wmis)
}

fn validate_input(input: WebhookEndpointInput) -> Result<ValidatedInput, PncError> {
    let url = input.url.trim();
    if url.is_empty() || url.len() > MAX_URL_LENGTH {
        return Err(PncError::invalid(format!(
            "url must be 1 to {MAX_URL_LENGTH} characters"
        )));
    }
    let parsed = url::Url::parse(url)
        .map_err(|error| PncError::invalid(format!("url is not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(PncError::invalid(
            "url must be an http or https URL with a host",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(PncError::invalid("url must not carry credentials"));
    }
    if input.enabled_events.is_empty() || input.enabled_events.len() > 50 {
        return Err(PncError::invalid(
            "enabledEvents must list 1 to 50 event types",
        ));
    }
    let mut enabled_events = Vec::new();
    for name in &input.enabled_events {
        let canonical = canonical_event_type(name).ok_or_else(|| {
            PncError::invalid(format!(
                "unknown event type `{}`",
                name.chars().take(60).collect::<String>()
            ))
        })?;
        if !enabled_events.contains(&canonical) {
            enabled_events.push(canonical);
        }
    }
    let status = match input.status.trim().to_ascii_lowercase().as_str() {
        "" | "enabled" | "active" => "enabled",
        "disabled" | "inactive" => "disabled",
        other => {
            return Err(PncError::invalid(format!(
                "status `{}` must be enabled or disabled",
                other.chars().take(20).collect::<String>()
            )));
        }
    };
    let metadata_json = match input.metadata_json.trim() {
        "" => "{}".to_string(),
        text => {
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|_| PncError::invalid("metadata must be a JSON object"))?;
            if !value.is_object() || text.len() > 8192 {
                return Err(PncError::invalid(
                    "metadata must be a JSON object of at most 8 KiB",
                ));
            }
            value.to_string()
        }
    };
    for (value, name) in [
        (&input.api_version, "apiVersion"),
        (&input.description, "description"),
    ] {
        if value.len() > 1000 {
            return Err(PncError::invalid(format!("{name} is too long")));
        }
    }
    Ok(ValidatedInput {
        url: parsed.to_string(),
        enabled_events,
        api_version: input.api_version,
        description: input.description,
        metadata_json,
        status: status.to_string(),
    })
}

fn endpoint_from_row(row: &sqlx::any::AnyRow) -> Result<WebhookEndpoint, PncError> {
    let text = |column: &str| row.try_get::<String, _>(column).map_err(map_sqlx_error);
    Ok(WebhookEndpoint {
        id: text("endpoint_id")?,
        created: row.try_get("created_at").map_err(map_sqlx_error)?,
        enabled_events: parse_list(&text("enabled_events")?),
        url: text("url")?,
        secret: String::new(),
        provider_ids: parse_list(&text("provider_ids")?),
        wmis: parse_list(&text("wmis")?),
        user_role: text("owner_role")?,
        user_name: text("owner_name")?,
        api_version: text("api_version")?,
        description: text("description")?,
        metadata_json: text("metadata_json")?,
        status: text("status")?,
    })
}

fn delivery_from_row(row: &sqlx::any::AnyRow) -> Result<WebhookDelivery, PncError> {
    let text = |column: &str| row.try_get::<String, _>(column).map_err(map_sqlx_error);
    let number = |column: &str| row.try_get::<i64, _>(column).map_err(map_sqlx_error);
    Ok(WebhookDelivery {
        id: text("delivery_id")?,
        endpoint_id: text("endpoint_id")?,
        event_id: text("event_id")?,
        event_type: text("event_type")?,
        status: text("status")?,
        attempts: u32::try_from(number("attempts")?).unwrap_or(u32::MAX),
        last_status_code: i32::try_from(number("last_status_code")?).unwrap_or(0),
        last_error: text("last_error")?,
        created_at: number("created_at")?,
        next_attempt_at: number("next_attempt_at")?,
        delivered_at: number("delivered_at")?,
        body: text("body")?,
    })
}

impl RegistryCore {
    /// Anyone authenticated may subscribe except chargers; what an endpoint receives
    /// follows its owner's role and scope.
    fn require_subscriber(caller: &Caller) -> Result<&pnc_proto::principal::Principal, PncError> {
        caller.require_role(&[Role::Oem, Role::Emsp, Role::Cpo])?;
        caller
            .principal()
            .ok_or_else(|| PncError::permission_denied("webhooks belong to API clients"))
    }

    async fn owned_endpoint_row(
        &self,
        connection: &mut sqlx::AnyConnection,
        caller: &Caller,
        id: &str,
    ) -> Result<sqlx::any::AnyRow, PncError> {
        let principal = Self::require_subscriber(caller)?;
        let not_found = || PncError::not_found(format!("no webhook endpoint {id}"));
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found());
        }
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE endpoint_id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *connection)
        .await
        .map_err(map_sqlx_error)?
        .ok_or_else(not_found)?;
        let owner: String = row.try_get("owner_client_id").map_err(map_sqlx_error)?;
        // Another client's endpoint is answered like a missing one (no existence oracle).
        if caller.role() != Some(Role::Admin) && owner != principal.client_id {
            return Err(not_found());
        }
        Ok(row)
    }

    pub async fn create_endpoint(
        &self,
        caller: &Caller,
        input: WebhookEndpointInput,
    ) -> Result<WebhookEndpoint, PncError> {
        let principal = Self::require_subscriber(caller)?.clone();
        let wmis = subscribed_wmis(&principal, &input.wmi_filter)?;
        let input = validate_input(input)?;
        let role = Role::try_from(principal.role).unwrap_or(Role::Unspecified);
        let mut secret_bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret_bytes);
        let secret = format!("whsec_{}", hex::encode(secret_bytes));
        let id = uuid::Uuid::new_v4().to_string();
        let now = unix_now();
        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) AS endpoints FROM webhook_endpoints WHERE owner_client_id = $1",
        )
        .bind(&principal.client_id)
        .fetch_one(transaction.connection())
        .await
        .map_err(map_sqlx_error)?
        .try_get("endpoints")
        .map_err(map_sqlx_error)?;
        if count >= MAX_ENDPOINTS_PER_CLIENT {
            return Err(PncError::new(
                pnc_proto::error::ErrorKind::FailedPrecondition,
                format!("a client may have at most {MAX_ENDPOINTS_PER_CLIENT} webhook endpoints"),
            ));
        }
        sqlx::query(
            "INSERT INTO webhook_endpoints (endpoint_id, owner_client_id, owner_name, owner_role, \
             wmis, provider_ids, url, secret, enabled_events, api_version, description, \
             metadata_json, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&id)
        .bind(&principal.client_id)
        .bind(&principal.client_id)
        .bind(role.name())
        .bind(json_list(&wmis))
        .bind(json_list(&principal.provider_ids))
        .bind(&input.url)
        .bind(&secret)
        .bind(json_list(&input.enabled_events))
        .bind(&input.api_version)
        .bind(&input.description)
        .bind(&input.metadata_json)
        .bind(&input.status)
        .bind(now)
        .bind(now)
        .execute(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        // The digest covers the subscription, not the secret.
        transaction
            .record("webhook.create", &id, None, Some(input.url.as_bytes()))
            .await?;
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE endpoint_id = $1"
        ))
        .bind(&id)
        .fetch_one(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        let mut endpoint = endpoint_from_row(&row)?;
        transaction.commit().await?;
        if !url_allowed(&endpoint.url, &self.config.webhook_allowed_url_prefixes) {
            tracing::warn!(endpoint = %id, url = %endpoint.url, "webhook url is outside registry.webhook_allowed_url_prefixes; deliveries to it will be refused");
        }
        endpoint.secret = secret;
        Ok(endpoint)
    }

    pub async fn get_endpoint(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<WebhookEndpoint, PncError> {
        let mut connection = self.database.connection().await?;
        let row = self.owned_endpoint_row(&mut connection, caller, id).await?;
        endpoint_from_row(&row)
    }

    pub async fn list_endpoints(&self, caller: &Caller) -> Result<Vec<WebhookEndpoint>, PncError> {
        let principal = Self::require_subscriber(caller)?;
        let rows = if caller.role() == Some(Role::Admin) {
            sqlx::query(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at LIMIT $1"
            ))
            .bind(1000i64)
            .fetch_all(self.database.pool())
            .await
        } else {
            sqlx::query(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE owner_client_id = $1 \
                 ORDER BY created_at"
            ))
            .bind(&principal.client_id)
            .fetch_all(self.database.pool())
            .await
        }
        .map_err(map_sqlx_error)?;
        rows.iter().map(endpoint_from_row).collect()
    }

    pub async fn update_endpoint(
        &self,
        caller: &Caller,
        id: &str,
        input: WebhookEndpointInput,
    ) -> Result<WebhookEndpoint, PncError> {
        // OPCP's update requires only url; a missing enabledEvents keeps the current ones.
        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        let row = self
            .owned_endpoint_row(transaction.connection(), caller, id)
            .await?;
        let current = endpoint_from_row(&row)?;
        let wmis = match caller.principal() {
            Some(principal) if !input.wmi_filter.is_empty() => {
                subscribed_wmis(principal, &input.wmi_filter)?
            }
            _ => current.wmis.clone(),
        };
        let input = validate_input(WebhookEndpointInput {
            enabled_events: if input.enabled_events.is_empty() {
                current.enabled_events.clone()
            } else {
                input.enabled_events
            },
            status: if input.status.is_empty() {
                current.status.clone()
            } else {
                input.status
            },
            ..input
        })?;
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $1, enabled_events = $2, api_version = $3, \
             description = $4, metadata_json = $5, status = $6, updated_at = $7, wmis = $8 \
             WHERE endpoint_id = $9",
        )
        .bind(&input.url)
        .bind(json_list(&input.enabled_events))
        .bind(&input.api_version)
        .bind(&input.description)
        .bind(&input.metadata_json)
        .bind(&input.status)
        .bind(unix_now())
        .bind(json_list(&wmis))
        .bind(id)
        .execute(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        transaction
            .record(
                "webhook.update",
                id,
                Some(current.url.as_bytes()),
                Some(input.url.as_bytes()),
            )
            .await?;
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE endpoint_id = $1"
        ))
        .bind(id)
        .fetch_one(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        let endpoint = endpoint_from_row(&row)?;
        transaction.commit().await?;
        Ok(endpoint)
    }

    pub async fn delete_endpoint(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<WebhookEndpoint, PncError> {
        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        let row = self
            .owned_endpoint_row(transaction.connection(), caller, id)
            .await?;
        let endpoint = endpoint_from_row(&row)?;
        sqlx::query("DELETE FROM webhook_endpoints WHERE endpoint_id = $1")
            .bind(id)
            .execute(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
        // Pending deliveries die with their endpoint; the delivery log of finished ones goes too.
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
        transaction
            .record("webhook.delete", id, Some(endpoint.url.as_bytes()), None)
            .await?;
        transaction.commit().await?;
        Ok(endpoint)
    }

    pub async fn list_deliveries(
        &self,
        caller: &Caller,
        request: ListWebhookDeliveriesRequest,
    ) -> Result<Vec<WebhookDelivery>, PncError> {
        let mut connection = self.database.connection().await?;
        self.owned_endpoint_row(&mut connection, caller, &request.endpoint_id)
            .await?;
        let limit = match request.limit {
            0 => 200,
            limit => limit.min(200),
        };
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 \
             ORDER BY created_at DESC, delivery_id LIMIT $2"
        ))
        .bind(&request.endpoint_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *connection)
        .await
        .map_err(map_sqlx_error)?;
        rows.iter().map(delivery_from_row).collect()
    }
}

/// The gRPC face of the subscriptions.
#[derive(Debug, Clone)]
pub struct WebhooksService {
    core: RegistryCore,
}

impl WebhooksService {
    pub fn new(core: RegistryCore) -> WebhooksService {
        WebhooksService { core }
    }
}

#[tonic::async_trait]
impl Webhooks for WebhooksService {
    async fn create_endpoint(
        &self,
        request: Request<WebhookEndpointInput>,
    ) -> Result<Response<WebhookEndpoint>, Status> {
        let caller = Caller::of(&request);
        Ok(Response::new(
            self.core
                .create_endpoint(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn get_endpoint(
        &self,
        request: Request<WebhookEndpointId>,
    ) -> Result<Response<WebhookEndpoint>, Status> {
        let caller = Caller::of(&request);
        Ok(Response::new(
            self.core
                .get_endpoint(&caller, &request.get_ref().id)
                .await?,
        ))
    }

    async fn list_endpoints(
        &self,
        request: Request<ListWebhookEndpointsRequest>,
    ) -> Result<Response<ListWebhookEndpointsResponse>, Status> {
        let caller = Caller::of(&request);
        Ok(Response::new(ListWebhookEndpointsResponse {
            endpoints: self.core.list_endpoints(&caller).await?,
        }))
    }

    async fn update_endpoint(
        &self,
        request: Request<UpdateWebhookEndpointRequest>,
    ) -> Result<Response<WebhookEndpoint>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.core
                .update_endpoint(&caller, &request.id, request.endpoint.unwrap_or_default())
                .await?,
        ))
    }

    async fn delete_endpoint(
        &self,
        request: Request<WebhookEndpointId>,
    ) -> Result<Response<WebhookEndpoint>, Status> {
        let caller = Caller::of(&request);
        Ok(Response::new(
            self.core
                .delete_endpoint(&caller, &request.get_ref().id)
                .await?,
        ))
    }

    async fn list_deliveries(
        &self,
        request: Request<ListWebhookDeliveriesRequest>,
    ) -> Result<Response<ListWebhookDeliveriesResponse>, Status> {
        let caller = Caller::of(&request);
        Ok(Response::new(ListWebhookDeliveriesResponse {
            deliveries: self
                .core
                .list_deliveries(&caller, request.into_inner())
                .await?,
        }))
    }
}

/// Hex HMAC-SHA256 of the body under the endpoint's secret (OPCP `X-Hubject-Signature:
/// sha256=<hex>`, `payload-signature: <hex>`).
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; the error case cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The background task that delivers webhooks.
pub struct Dispatcher {
    core: RegistryCore,
    settings: Arc<RegistryConfig>,
    http: reqwest::Client,
}

enum Outcome {
    Delivered(u16),
    /// Worth another attempt (5xx, 408, 429, no answer).
    Retry(i32, String),
    /// Not worth another attempt (refused URL, other 4xx).
    Fail(i32, String),
}

impl Dispatcher {
    pub fn new(core: RegistryCore) -> anyhow::Result<Dispatcher> {
        let settings = core.config.clone();
        let timeout = Duration::from_millis(settings.webhook_timeout_ms.max(100));
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            // A redirect would send the event to a URL nobody allowed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("pnc-webhooks/1")
            .build()?;
        Ok(Dispatcher {
            core,
            settings,
            http,
        })
    }

    /// Runs until `shutdown`: reads the root event feed, then delivers what is due.
    pub async fn run(self, shutdown: CancellationToken) {
        let interval = Duration::from_millis(self.settings.webhook_poll_interval_ms.max(50));
        loop {
            if let Err(error) = self.copy_root_events().await {
                tracing::debug!(error = %error, "root event feed not read");
            }
            match self.deliver_due().await {
                Ok(0) => {}
                Ok(count) => tracing::debug!(count, "webhook deliveries attempted"),
                Err(error) => tracing::warn!(error = %error, "webhook dispatch failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Copies new truststore events into the queue. The cursor moves with a conditional
    /// UPDATE in the same transaction as the inserts, so of two replicas reading the same
    /// events only one queues them.
    pub async fn copy_root_events(&self) -> Result<usize, PncError> {
        let cursor: i64 =
            sqlx::query("SELECT after_sequence FROM webhook_feed_cursor WHERE feed = $1")
                .bind("truststore")
                .fetch_one(self.core.database.pool())
                .await
                .map_err(map_sqlx_error)?
                .try_get("after_sequence")
                .map_err(map_sqlx_error)?;
        let events = self
            .core
            .truststore()
            .list_events(ListEventsRequest {
                after_sequence: cursor,
                limit: 100,
            })
            .await
            .map_err(PncError::from)?
            .into_inner()
            .events;
        let Some(last) = events.iter().map(|event| event.sequence).max() else {
            return Ok(0);
        };
        let mut transaction = self
            .core
            .database
            .pool()
            .begin()
            .await
            .map_err(map_sqlx_error)?;
        let moved = sqlx::query(
            "UPDATE webhook_feed_cursor SET after_sequence = $1 WHERE feed = $2 AND after_sequence = $3",
        )
        .bind(last)
        .bind("truststore")
        .bind(cursor)
        .execute(&mut *transaction)
        .await
        .map_err(map_sqlx_error)?;
        if moved.rows_affected() == 0 {
            return Ok(0);
        }
        let queued_events: Vec<Event> = events
            .iter()
            .filter_map(|event| {
                let event_type = match event.event_type.as_str() {
                    "root.cert.added" => "root.cert.added",
                    "root.cert.expired" => "root.cert.expired",
                    "root.cert.revoked" => "root.cert.revoked",
                    _ => return None,
                };
                let root = event.root.as_ref()?;
                Some(Event {
                    event_type,
                    audience: Audience::Everyone,
                    xsd_msg_def_namespace: crate::ISO2_NAMESPACE.to_string(),
                    payload: root_payload(root),
                })
            })
            .collect();
        let queued = crate::events::emit(&mut transaction, &queued_events).await?;
        transaction.commit().await.map_err(map_sqlx_error)?;
        Ok(queued)
    }

    /// Claims and attempts every due delivery; returns how many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, PncError> {
        let now = unix_now();
        let lease = now + (self.settings.webhook_timeout_ms / 1000) as i64 + 30;
        let rows = sqlx::query(
            "UPDATE webhook_deliveries SET claimed_until = $1, attempts = attempts + 1 \
             WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $2 AND claimed_until < $3 \
             ORDER BY next_attempt_at LIMIT $4) AND claimed_until < $5 \
             RETURNING delivery_id, endpoint_id, body, attempts",
        )
        .bind(lease)
        .bind(now)
        .bind(now)
        .bind(CLAIM_BATCH)
        .bind(now)
        .fetch_all(self.core.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        let attempted = rows.len();
        for row in rows {
            let delivery_id: String = row.try_get("delivery_id").map_err(map_sqlx_error)?;
            let endpoint_id: String = row.try_get("endpoint_id").map_err(map_sqlx_error)?;
            let body: String = row.try_get("body").map_err(map_sqlx_error)?;
            let attempts: i64 = row.try_get("attempts").map_err(map_sqlx_error)?;
            let outcome = self.attempt(&endpoint_id, &body).await?;
            self.settle(&delivery_id, attempts, outcome).await?;
        }
        Ok(attempted)
    }

    async fn attempt(&self, endpoint_id: &str, body: &str) -> Result<Outcome, PncError> {
        let endpoint =
            sqlx::query("SELECT url, secret, status FROM webhook_endpoints WHERE endpoint_id = $1")
                .bind(endpoint_id)
                .fetch_optional(self.core.database.pool())
                .await
                .map_err(map_sqlx_error)?;
        let Some(endpoint) = endpoint else {
            return Ok(Outcome::Fail(0, "the endpoint was deleted".into()));
        };
        let url: String = endpoint.try_get("url").map_err(map_sqlx_error)?;
        let secret: String = endpoint.try_get("secret").map_err(map_sqlx_error)?;
        let status: String = endpoint.try_get("status").map_err(map_sqlx_error)?;
        if status != "enabled" {
            return Ok(Outcome::Fail(0, "the endpoint is disabled".into()));
        }
        if !url_allowed(&url, &self.settings.webhook_allowed_url_prefixes) {
            tracing::warn!(endpoint = %endpoint_id, url = %url, "webhook delivery refused: url is outside registry.webhook_allowed_url_prefixes");
            return Ok(Outcome::Fail(
                0,
                "delivery refused: the url is not under a prefix the operator allowed \
                 (registry.webhook_allowed_url_prefixes)"
                    .into(),
            ));
        }
        let signature = signature(&secret, body.as_bytes());
        let sent = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hubject-Signature", format!("sha256={signature}"))
            .header("X-Operator-Signature", format!("sha256={signature}"))
            .header("payload-signature", &signature)
            .body(body.to_string())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                let reason = if error.is_timeout() {
                    "timed out".to_string()
                } else if error.is_connect() {
                    "connection failed".to_string()
                } else {
                    "request failed".to_string()
                };
                return Ok(Outcome::Retry(0, reason));
            }
        };
        let status = response.status();
        // Read (and drop) at most MAX_RESPONSE_BYTES of the answer.
        let mut read = 0usize;
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        let code = status.as_u16();
        Ok(if status.is_success() {
            Outcome::Delivered(code)
        } else if status.is_server_error() || code == 408 || code == 429 {
            Outcome::Retry(i32::from(code), format!("answered HTTP {code}"))
        } else {
            Outcome::Fail(i32::from(code), format!("answered HTTP {code}"))
        })
    }

    async fn settle(
        &self,
        delivery_id: &str,
        attempts: i64,
        outcome: Outcome,
    ) -> Result<(), PncError> {
        let now = unix_now();
        let (status, code, error, next_attempt_at, delivered_at) = match outcome {
            Outcome::Delivered(code) => ("delivered", i32::from(code), String::new(), now, now),
            Outcome::Fail(code, error) => ("failed", code, error, now, 0),
            Outcome::Retry(code, error) => {
                if attempts >= i64::from(self.settings.webhook_max_attempts.max(1)) {
                    (
                        "failed",
                        code,
                        format!("{error}; retries exhausted"),
                        now,
                        0,
                    )
                } else {
                    let base_ms = self.settings.webhook_retry_base_ms.max(1000);
                    let exponent = u32::try_from(attempts - 1).unwrap_or(0).min(20);
                    let delay_ms = base_ms.saturating_mul(1u64 << exponent);
                    let delay = (delay_ms / 1000).clamp(1, MAX_RETRY_DELAY_SECONDS);
                    // Times are whole seconds: one more, so a retry never comes before its
                    // backoff (a 1 s backoff started at x.9 s would otherwise be 0.1 s).
                    ("pending", code, error, now + delay as i64 + 1, 0)
                }
            }
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, last_status_code = $2, last_error = $3, \
             next_attempt_at = $4, delivered_at = $5, claimed_until = 0 WHERE delivery_id = $6",
        )
        .bind(status)
        .bind(i64::from(code))
        .bind(&error)
        .bind(next_attempt_at)
        .bind(delivered_at)
        .bind(delivery_id)
        .execute(self.core.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }
}

/// OPCP's root event payload.
fn root_payload(root: &pnc_proto::truststore::v1::Root) -> serde_json::Value {
    let der = root
        .certificate
        .as_ref()
        .map(|certificate| certificate.der.clone())
        .unwrap_or_default();
    let parsed = pnc_pki::Certificate::from_der(&der).ok();
    let root_type = match pnc_proto::truststore::v1::RootType::try_from(root.root_type) {
        Ok(pnc_proto::truststore::v1::RootType::V2g) => "V2G",
        Ok(pnc_proto::truststore::v1::RootType::Mo) => "MO",
        Ok(pnc_proto::truststore::v1::RootType::Oem) => "OEM",
        Ok(pnc_proto::truststore::v1::RootType::Pe) => "PE",
        Ok(pnc_proto::truststore::v1::RootType::Csms) => "CSMS",
        Ok(pnc_proto::truststore::v1::RootType::Manufacturer) => "MANUFACTURER",
        _ => "UNKNOWN",
    };
    json!({
        "rootCertificateId": root.id,
        "distinguishedName": parsed.as_ref().map(|c| c.subject().to_string()).unwrap_or_default(),
        "commonName": parsed.as_ref().and_then(|c| c.common_name().map(str::to_string)).unwrap_or_default(),
        "rootType": root_type,
        "rootSerialNumber": parsed.as_ref().map(|c| c.serial_hex().to_ascii_lowercase()).unwrap_or_default(),
        "fingerprintSHA256": root.sha256_fingerprint.to_ascii_lowercase(),
        "caCertificate": base64::engine::general_purpose::STANDARD.encode(&der),
    })
}
