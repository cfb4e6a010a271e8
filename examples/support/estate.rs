//! The small estate the change and release examples run on: a web shop service that depends
//! on an application that runs on a server connected to a core switch, each registered and
//! taken live under the change that built it.

use chrono::{DateTime, Utc};
use smsys::core::records::{AttributeValue, ConfigurationItem, Reference, Relationship};
use smsys::core::{Actor, CommandHandler, CommandMeta, Context, SequentialIds};
use smsys::processes::{CiCommand, CiManagement};

/// What the examples return on failure.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// A validated identifier (reference, person, group, CI, ...).
pub(crate) fn id<T: std::str::FromStr>(text: &str) -> Result<T, Error>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(text.parse()?)
}

/// Runs `command` on CI `ci` as the CMDB engineer at `now`.
pub(crate) async fn ci(
    cis: &CommandHandler<CiManagement>,
    (now, ids): (DateTime<Utc>, &SequentialIds),
    ci: &str,
    command: CiCommand,
) -> Result<(), Error> {
    let stream = ConfigurationItem::stream(&id(ci)?)?;
    let ctx = Context::new(now, ids);
    let meta = CommandMeta::new(Actor::new("cmdb.engineer")?);
    cis.execute(&stream, &command, &meta, &ctx).await?;
    Ok(())
}

/// Registers the estate at `now`, each CI and relationship naming change `built_by`:
/// `sw-core` (network device), `srv-web-01` (server), `shop` (application) and `webshop`
/// (service, owned by e-commerce, critical), all live.
pub(crate) async fn build(
    cis: &CommandHandler<CiManagement>,
    at: (DateTime<Utc>, &SequentialIds),
    built_by: &str,
) -> Result<(), Error> {
    let build: Reference = id(built_by)?;
    let change = Some(build);
    let estate = [
        ("sw-core", "network_device", vec![("role", "switch")]),
        ("srv-web-01", "server", vec![("os", "debian 12")]),
        ("shop", "application", vec![("version", "2.3")]),
        (
            "webshop",
            "service",
            vec![
                ("owner", "e-commerce"),
                ("customers", "web customers, sales"),
                ("criticality", "high"),
            ],
        ),
    ];
    for (name, ci_type, attributes) in estate {
        let attributes = attributes
            .into_iter()
            .map(|(name, value)| Ok((id(name)?, AttributeValue::from(value))))
            .collect::<Result<_, Error>>()?;
        let register = CiCommand::Register {
            id: id(name)?,
            ci_type: id(ci_type)?,
            name: name.into(),
            description: String::new(),
            attributes,
            change: change.clone(),
        };
        ci(cis, at, name, register).await?;
        for to in ["ordered", "in_build", "live"] {
            let status = CiCommand::ChangeStatus {
                to: to.into(),
                reason: String::new(),
                change: change.clone(),
            };
            ci(cis, at, name, status).await?;
        }
    }
    for (from, relationship, to) in [
        ("srv-web-01", Relationship::CONNECTS_TO, "sw-core"),
        ("shop", Relationship::RUNS_ON, "srv-web-01"),
        ("webshop", Relationship::DEPENDS_ON, "shop"),
    ] {
        let relate = CiCommand::AddRelationship {
            relationship,
            target: id(to)?,
            change: change.clone(),
        };
        ci(cis, at, from, relate).await?;
    }
    Ok(())
}
