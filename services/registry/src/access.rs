//! Who is calling and what they may touch: the registry's own scope check, behind the
//! gateway's (defence in depth).
//!
//! The gateway attaches the authenticated principal to every call. pnc's own services
//! (provisioning, ocsp) call without one; only mTLS-authenticated pnc components reach the
//! registry at all, so a call without a principal is a service call.

use pnc_common::PncError;
use pnc_common::ids::{Emaid, Pcid, ProviderId, Wmi};
use pnc_proto::principal::{Principal, Role, from_metadata};

#[derive(Debug, Clone)]
pub enum Caller {
    /// One of pnc's services.
    Service,
    /// An API client, as the gateway authenticated it.
    Client(Principal),
}

impl Caller {
    pub fn of<T>(request: &tonic::Request<T>) -> Caller {
        match from_metadata(request.metadata()) {
            Some(principal) => Caller::Client(principal),
            None => Caller::Service,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::Service => None,
            Caller::Client(principal) => {
                Some(Role::try_from(principal.role).unwrap_or(Role::Unspecified))
            }
        }
    }

    /// Services and admins act for everyone.
    pub fn is_privileged(&self) -> bool {
        matches!(self.role(), None | Some(Role::Admin))
    }

    /// The audit log's "who": the client ID, or `service`.
    pub fn actor(&self) -> (&str, &str) {
        match self {
            Caller::Service => ("service", "service"),
            Caller::Client(principal) => (
                principal.client_id.as_str(),
                Role::try_from(principal.role)
                    .unwrap_or(Role::Unspecified)
                    .name(),
            ),
        }
    }

    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Service => None,
            Caller::Client(principal) => Some(principal),
        }
    }

    /// 403 unless the caller is a service, an admin, or has one of `roles`.
    pub fn require_role(&self, roles: &[Role]) -> Result<(), PncError> {
        match self.role() {
            None | Some(Role::Admin) => Ok(()),
            Some(role) if roles.contains(&role) => Ok(()),
            Some(role) => Err(PncError::permission_denied(format!(
                "role {} may not do this",
                role.name()
            ))),
        }
    }

    pub fn has_wmi(&self, wmi: &Wmi) -> bool {
        match self {
            Caller::Service => true,
            Caller::Client(principal) => {
                self.role() == Some(Role::Admin)
                    || (self.role() == Some(Role::Oem)
                        && principal
                            .wmis
                            .iter()
                            .any(|granted| granted.eq_ignore_ascii_case(wmi.as_str())))
            }
        }
    }

    pub fn has_provider(&self, provider: &ProviderId) -> bool {
        match self {
            Caller::Service => true,
            Caller::Client(principal) => {
                self.role() == Some(Role::Admin)
                    || (self.role() == Some(Role::Emsp)
                        && principal.provider_ids.iter().any(|granted| {
                            ProviderId::parse(granted).is_ok_and(|granted| &granted == provider)
                        }))
            }
        }
    }

    /// OEM writes on a PCID: the OEM of its WMI (OPCP 04_authentication).
    pub fn require_wmi_of(&self, pcid: &Pcid) -> Result<(), PncError> {
        if self.has_wmi(&pcid.wmi()) {
            Ok(())
        } else {
            Err(PncError::permission_denied(format!(
                "not allowed for WMI {} of PCID {pcid}",
                pcid.wmi()
            )))
        }
    }

    /// eMSP writes on an eMAID: the eMSP of its provider ID.
    pub fn require_provider_of(&self, emaid: &Emaid) -> Result<(), PncError> {
        if self.has_provider(&emaid.provider_id()) {
            Ok(())
        } else {
            Err(PncError::permission_denied(format!(
                "not allowed for provider {} of eMAID {emaid}",
                emaid.provider_id()
            )))
        }
    }

    /// Reading a PCID's provisioning certificate: its OEM, and any eMSP (they need the
    /// PCID, the pool cannot be listed; OPCP PCP GET is open to MO).
    pub fn require_pcp_read(&self, pcid: &Pcid) -> Result<(), PncError> {
        match self.role() {
            Some(Role::Emsp) => Ok(()),
            Some(Role::Oem) => self.require_wmi_of(pcid),
            _ => {
                self.require_role(&[])?;
                Ok(())
            }
        }
    }

    /// A contract is visible to the OEM of its PCID and the eMSP of its eMAID.
    pub fn may_see_contract(&self, pcid: &Pcid, emaid: &Emaid) -> bool {
        self.is_privileged() || self.has_wmi(&pcid.wmi()) || self.has_provider(&emaid.provider_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(role: Role, wmis: &[&str], providers: &[&str]) -> Caller {
        Caller::Client(Principal {
            client_id: "c".into(),
            role: role as i32,
            wmis: wmis.iter().map(|s| s.to_string()).collect(),
            provider_ids: providers.iter().map(|s| s.to_string()).collect(),
            operator_ids: vec![],
        })
    }

    #[test]
    fn scopes() {
        let pcid = Pcid::parse("hubjectopenpnc0001").unwrap();
        let emaid = Emaid::parse("DE-PNC-C00000001").unwrap();
        assert!(
            client(Role::Oem, &["HUB"], &[])
                .require_wmi_of(&pcid)
                .is_ok()
        );
        assert!(
            client(Role::Oem, &["ABC"], &[])
                .require_wmi_of(&pcid)
                .is_err()
        );
        // An eMSP granted the WMI string has no OEM rights.
        assert!(
            client(Role::Emsp, &["HUB"], &["DEPNC"])
                .require_wmi_of(&pcid)
                .is_err()
        );
        assert!(
            client(Role::Emsp, &[], &["DE*PNC"])
                .require_provider_of(&emaid)
                .is_ok()
        );
        assert!(
            client(Role::Emsp, &[], &["DEXYZ"])
                .require_provider_of(&emaid)
                .is_err()
        );
        assert!(client(Role::Cpo, &[], &[]).require_pcp_read(&pcid).is_err());
        assert!(
            client(Role::Emsp, &[], &["DEXYZ"])
                .require_pcp_read(&pcid)
                .is_ok()
        );
        assert!(Caller::Service.require_wmi_of(&pcid).is_ok());
        assert!(
            client(Role::Admin, &[], &[])
                .require_provider_of(&emaid)
                .is_ok()
        );
    }
}
