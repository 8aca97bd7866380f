//! The gRPC face of the provisioning service.

use pnc_proto::provisioning::v1::{
    ListCpsChainsRequest, ListCpsChainsResponse, provisioning_server::Provisioning,
};
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
pub struct ProvisioningService;

#[tonic::async_trait]
impl Provisioning for ProvisioningService {
    async fn list_cps_chains(
        &self,
        _request: Request<ListCpsChainsRequest>,
    ) -> Result<Response<ListCpsChainsResponse>, Status> {
        Ok(Response::new(ListCpsChainsResponse { chains: Vec::new() }))
    }
}
