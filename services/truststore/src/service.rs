//! The gRPC face of the truststore.

use pnc_proto::common::v1::Certificate;
use pnc_proto::truststore::v1::{
    AddIntermediateRequest, FindIssuerRequest, FindIssuerResponse, GetRootRequest, KnownCa,
    ListEventsRequest, ListEventsResponse, ListKnownCasRequest, ListKnownCasResponse,
    ListRootsRequest, ListRootsResponse, PutRootRequest, Root, RootType,
    trust_store_server::TrustStore,
};
use tonic::{Request, Response, Status};

use crate::store::RootStore;

#[derive(Debug)]
pub struct TrustStoreService {
    store: RootStore,
}

impl TrustStoreService {
    pub fn new(store: RootStore) -> TrustStoreService {
        TrustStoreService { store }
    }
}

/// The name a root type has in the table and in OPCP (`rootType`).
pub fn root_type_name(root_type: RootType) -> Option<&'static str> {
    match root_type {
        RootType::Unspecified => None,
        RootType::V2g => Some("V2G"),
        RootType::Mo => Some("MO"),
        RootType::Oem => Some("OEM"),
        RootType::Pe => Some("PE"),
        RootType::Csms => Some("CSMS"),
        RootType::Manufacturer => Some("MANUFACTURER"),
    }
}

fn root_type_from_name(name: &str) -> RootType {
    match name {
        "V2G" => RootType::V2g,
        "MO" => RootType::Mo,
        "OEM" => RootType::Oem,
        "PE" => RootType::Pe,
        "CSMS" => RootType::Csms,
        "MANUFACTURER" => RootType::Manufacturer,
        _ => RootType::Unspecified,
    }
}

#[tonic::async_trait]
impl TrustStore for TrustStoreService {
    async fn list_roots(
        &self,
        request: Request<ListRootsRequest>,
    ) -> Result<Response<ListRootsResponse>, Status> {
        let root_type = RootType::try_from(request.get_ref().root_type)
            .map_err(|_| Status::invalid_argument("unknown root type"))?;
        let roots = self.store.list(root_type_name(root_type)).await?;
        Ok(Response::new(ListRootsResponse {
            roots: roots
                .into_iter()
                .map(|root| Root {
                    certificate: Some(Certificate { der: root.der }),
                    root_type: root_type_from_name(&root.root_type) as i32,
                    sha256_fingerprint: root.sha256_fingerprint,
                    ..Root::default()
                })
                .collect(),
        }))
    }

    // The root pool's writes and the issuer index are being built (issue 4/6); until
    // then these answer UNIMPLEMENTED rather than pretending.
    async fn find_issuer(
        &self,
        _request: Request<FindIssuerRequest>,
    ) -> Result<Response<FindIssuerResponse>, Status> {
        Err(Status::unimplemented("FindIssuer"))
    }

    async fn put_root(&self, _request: Request<PutRootRequest>) -> Result<Response<Root>, Status> {
        Err(Status::unimplemented("PutRoot"))
    }

    async fn get_root(&self, _request: Request<GetRootRequest>) -> Result<Response<Root>, Status> {
        Err(Status::unimplemented("GetRoot"))
    }

    async fn delete_root(
        &self,
        _request: Request<GetRootRequest>,
    ) -> Result<Response<Root>, Status> {
        Err(Status::unimplemented("DeleteRoot"))
    }

    async fn add_intermediate(
        &self,
        _request: Request<AddIntermediateRequest>,
    ) -> Result<Response<KnownCa>, Status> {
        Err(Status::unimplemented("AddIntermediate"))
    }

    async fn list_known_cas(
        &self,
        _request: Request<ListKnownCasRequest>,
    ) -> Result<Response<ListKnownCasResponse>, Status> {
        Err(Status::unimplemented("ListKnownCas"))
    }

    async fn list_events(
        &self,
        _request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        Err(Status::unimplemented("ListEvents"))
    }
}
