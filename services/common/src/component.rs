//! The components a pnc process can run.

use std::fmt;
use std::str::FromStr;

/// A service or the gateway. Its name is its mTLS identity (certificate CN) and its
/// database schema name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    Truststore,
    Registry,
    Ocsp,
    Provisioning,
    Gateway,
}

impl Component {
    /// In start order: each component only calls those before it.
    pub const ALL: [Component; 5] = [
        Component::Truststore,
        Component::Registry,
        Component::Ocsp,
        Component::Provisioning,
        Component::Gateway,
    ];

    pub const SERVICES: [Component; 4] = [
        Component::Truststore,
        Component::Registry,
        Component::Ocsp,
        Component::Provisioning,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Truststore => "truststore",
            Component::Registry => "registry",
            Component::Ocsp => "ocsp",
            Component::Provisioning => "provisioning",
            Component::Gateway => "gateway",
        }
    }

    /// The port a service listens on when run alone without `--grpc-listen`.
    pub fn default_grpc_port(self) -> Option<u16> {
        match self {
            Component::Truststore => Some(7001),
            Component::Registry => Some(7002),
            Component::Ocsp => Some(7003),
            Component::Provisioning => Some(7004),
            Component::Gateway => None,
        }
    }

    /// Which components may call this one over gRPC (boulder's per-service allowlist).
    /// Calls go one way: gateway → services; provisioning → ocsp; provisioning, ocsp →
    /// registry, truststore; registry → truststore. `pnc` command-line tools connect as the gateway.
    pub fn allowed_callers(self) -> &'static [Component] {
        match self {
            Component::Truststore => &[
                Component::Gateway,
                Component::Registry,
                Component::Ocsp,
                Component::Provisioning,
            ],
            Component::Registry => &[Component::Gateway, Component::Ocsp, Component::Provisioning],
            // Provisioning asks for the status of foreign OEM certificates.
            Component::Ocsp => &[Component::Gateway, Component::Provisioning],
            Component::Provisioning => &[Component::Gateway],
            Component::Gateway => &[],
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Component {
    type Err = String;

    fn from_str(name: &str) -> Result<Component, String> {
        Component::ALL
            .into_iter()
            .find(|component| component.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown component `{name}`; expected one of truststore, provisioning, ocsp, registry, gateway"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for component in Component::ALL {
            assert_eq!(component.name().parse::<Component>(), Ok(component));
        }
        assert!("database".parse::<Component>().is_err());
    }

    #[test]
    fn calls_only_go_down_the_start_order() {
        for callee in Component::ALL {
            for caller in callee.allowed_callers() {
                let callee_position = Component::ALL.iter().position(|c| *c == callee);
                let caller_position = Component::ALL.iter().position(|c| c == caller);
                assert!(caller_position > callee_position, "{caller} → {callee}");
            }
        }
    }
}
