//! Events for webhook subscribers (OPCP webhook.payload.v1.json), fanned out into the
//! delivery queue inside the transaction of the change that caused them: an event exists
//! if and only if its change committed.

use pnc_common::PncError;
use pnc_common::db::{map_sqlx_error, unix_now};
use pnc_common::ids::{Emaid, Pcid, ProviderId, Wmi};
use pnc_proto::principal::Role;
use serde_json::{Value, json};
use sqlx::Row;

/// Every event name pnc emits or accepts in a subscription. OPNC's `emsp.*` names are
/// accepted as aliases of the `mo.*` ones (ecosystem-apis §3.3).
pub const EVENT_TYPES: [&str; 17] = [
    "root.cert.added",
    "root.cert.expired",
    "root.cert.revoked",
    "mo.prov.cert.updated",
    "mo.prov.cert.deleted",
    "mo.prov.cert.factory.reset",
    "mo.prov.cert.updated.factory.reset",
    "mo.contract.delivered.to.oem",
    "mo.contract.created.sent.to.oem",
    "mo.contract.updated.sent.to.oem",
    "mo.contract.deleted.sent.to.oem",
    "mo.contract.rejected.by.oem",
    "mo.contract.queued.to.oem",
    "oem.contract.created",
    "oem.contract.updated",
    "oem.contract.deleted",
    "*",
];

/// The canonical (OPCP) name of an event type, or `None` if it is not one.
pub fn canonical_event_type(name: &str) -> Option<String> {
    let name = name.trim();
    let canonical = match name.strip_prefix("emsp.") {
        Some(rest) => format!("mo.{rest}"),
        None => name.to_string(),
    };
    EVENT_TYPES
        .contains(&canonical.as_str())
        .then_some(canonical)
}

/// Who an event is for.
#[derive(Debug, Clone)]
pub enum Audience {
    /// Every subscriber (root events).
    Everyone,
    /// OEM subscribers of this WMI (and admins).
    Oem(Wmi),
    /// eMSP subscribers of this provider (and admins).
    Emsp(ProviderId),
}

#[derive(Debug, Clone)]
pub struct Event {
    pub event_type: &'static str,
    pub audience: Audience,
    pub xsd_msg_def_namespace: String,
    pub payload: Value,
}

impl Event {
    /// A contract event payload (`emaid`, `pcid`, `contractCert`, …).
    pub fn contract(
        event_type: &'static str,
        audience: Audience,
        emaid: &Emaid,
        pcid: &Pcid,
        contract_certificate_der: Option<&[u8]>,
    ) -> Event {
        use base64::Engine;
        let mut payload = json!({ "emaid": emaid.as_str(), "pcid": pcid.as_str() });
        if let Some(der) = contract_certificate_der {
            payload["contractCert"] =
                Value::String(base64::engine::general_purpose::STANDARD.encode(der));
            payload["signatureAlgorithm"] = Value::String("secp256r1".into());
        }
        Event {
            event_type,
            audience,
            xsd_msg_def_namespace: crate::ISO2_NAMESPACE.to_string(),
            payload,
        }
    }
}

impl Event {
    /// OPCP's `cpsSignerRootFingerprint` and `cpsSignerRootCommonName`: the V2G root the
    /// contract data was signed under (its CN is the issuer CN of the last CPS Sub-CA).
    pub fn add_cps_signer_root(&mut self, signed: &pnc_proto::registry::v1::SignedContractData) {
        self.payload["cpsSignerRootFingerprint"] =
            Value::String(signed.v2g_root_fingerprint.to_ascii_lowercase());
        let common_name = signed
            .cps_chain
            .last()
            .and_then(|sub_ca| pnc_pki::Certificate::from_der(&sub_ca.der).ok())
            .and_then(|sub_ca| sub_ca.issuer().values("2.5.4.3").next().map(str::to_string));
        if let Some(common_name) = common_name {
            self.payload["cpsSignerRootCommonName"] = Value::String(common_name);
        }
    }
}

struct Subscriber {
    endpoint_id: String,
    role: Option<Role>,
    wmis: Vec<String>,
    provider_ids: Vec<String>,
    enabled_events: Vec<String>,
}

impl Subscriber {
    fn wants(&self, event: &Event) -> bool {
        let subscribed = self
            .enabled_events
            .iter()
            .any(|name| name == "*" || name == event.event_type);
        if !subscribed {
            return false;
        }
        match (&event.audience, self.role) {
            (_, Some(Role::Admin)) | (Audience::Everyone, _) => true,
            (Audience::Oem(wmi), Some(Role::Oem)) => self
                .wmis
                .iter()
                .any(|granted| granted.eq_ignore_ascii_case(wmi.as_str())),
            (Audience::Emsp(provider), Some(Role::Emsp)) => self
                .provider_ids
                .iter()
                .any(|id| ProviderId::parse(id).is_ok_and(|granted| &granted == provider)),
            _ => false,
        }
    }
}

/// The delivery body (OPCP `{timestamp, eventId, eventType, xsdMsgDefNamespace, payload}`).
fn delivery_body(event: &Event, event_id: &str) -> String {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "timestamp": timestamp,
        "eventId": event_id,
        "eventType": event.event_type,
        "xsdMsgDefNamespace": event.xsd_msg_def_namespace,
        "payload": event.payload,
    })
    .to_string()
}

/// Queues a delivery of each event to every enabled endpoint that wants it, in the
/// caller's transaction.
pub async fn emit(
    connection: &mut sqlx::AnyConnection,
    events: &[Event],
) -> Result<usize, PncError> {
    if events.is_empty() {
        return Ok(0);
    }
    let rows = sqlx::query(
        "SELECT endpoint_id, owner_role, wmis, provider_ids, enabled_events \
         FROM webhook_endpoints WHERE status = $1",
    )
    .bind("enabled")
    .fetch_all(&mut *connection)
    .await
    .map_err(map_sqlx_error)?;
    let list = |row: &sqlx::any::AnyRow, column: &str| -> Vec<String> {
        row.try_get::<String, _>(column)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    };
    let subscribers: Vec<Subscriber> = rows
        .iter()
        .map(|row| Subscriber {
            endpoint_id: row.try_get("endpoint_id").unwrap_or_default(),
            role: row
                .try_get::<String, _>("owner_role")
                .ok()
                .and_then(|name| Role::from_name(&name)),
            wmis: list(row, "wmis"),
            provider_ids: list(row, "provider_ids"),
            enabled_events: list(row, "enabled_events"),
        })
        .collect();
    let now = unix_now();
    let mut queued = 0;
    for event in events {
        let event_id = uuid::Uuid::new_v4().to_string();
        let body = delivery_body(event, &event_id);
        for subscriber in subscribers.iter().filter(|s| s.wants(event)) {
            sqlx::query(
                "INSERT INTO webhook_deliveries (delivery_id, endpoint_id, event_id, event_type, \
                 body, status, attempts, next_attempt_at, claimed_until, last_status_code, \
                 last_error, created_at, delivered_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 0, 0, '', $8, 0)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&subscriber.endpoint_id)
            .bind(&event_id)
            .bind(event.event_type)
            .bind(&body)
            .bind("pending")
            .bind(now)
            .bind(now)
            .execute(&mut *connection)
            .await
            .map_err(map_sqlx_error)?;
            queued += 1;
        }
    }
    Ok(queued)
}
