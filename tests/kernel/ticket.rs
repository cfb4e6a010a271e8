//! A small aggregate that exercises the kernel: a ticket that is opened, commented and closed.
//! The state ([`Ticket`], with `evolve`) and the rules ([`TicketDesk`], with `decide`) are
//! separate types, as the kernel's traits split them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smsys::core::{
    Aggregate, Context, DecodeError, DomainEvent, EventSourced, EventType, Stamp, Upcasters,
};

/// The state: what the events say, and who opened the ticket when (from the events' stamps).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ticket {
    pub(crate) title: Option<String>,
    pub(crate) channel: Option<String>,
    pub(crate) opened_by: Option<String>,
    pub(crate) opened_at: Option<DateTime<Utc>>,
    pub(crate) comments: Vec<String>,
    pub(crate) closed: bool,
}

/// The rules: `decide` on a [`Ticket`].
pub(crate) struct TicketDesk;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TicketCommand {
    Open { title: String, channel: String },
    Comment(String),
    Close,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Opened {
    pub(crate) title: String,
    pub(crate) channel: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TicketEvent {
    Opened(Opened),
    Commented { text: String },
    Closed,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum TicketRejection {
    #[error("ticket is already open")]
    AlreadyOpen,
    #[error("ticket was never opened")]
    NotOpen,
    #[error("ticket is closed")]
    Closed,
    #[error("comment is empty")]
    EmptyComment,
}

pub(crate) const OPENED: &str = "ticket.opened";
pub(crate) const COMMENTED: &str = "ticket.commented";
pub(crate) const CLOSED: &str = "ticket.closed";

fn ty(name: &str) -> EventType {
    EventType::new(name).expect("constant event types are valid")
}

impl DomainEvent for TicketEvent {
    fn event_type(&self) -> EventType {
        ty(match self {
            TicketEvent::Opened(_) => OPENED,
            TicketEvent::Commented { .. } => COMMENTED,
            TicketEvent::Closed => CLOSED,
        })
    }

    fn schema_version(&self) -> u32 {
        match self {
            TicketEvent::Opened(_) => 2,
            TicketEvent::Commented { .. } | TicketEvent::Closed => 1,
        }
    }

    fn to_payload(&self) -> Result<Value, serde_json::Error> {
        match self {
            TicketEvent::Opened(o) => serde_json::to_value(o),
            TicketEvent::Commented { text } => Ok(serde_json::json!({ "text": text })),
            TicketEvent::Closed => Ok(serde_json::json!({})),
        }
    }

    fn from_payload(event_type: &EventType, payload: Value) -> Result<Self, DecodeError> {
        let bad = |source| DecodeError::Payload {
            event_type: event_type.clone(),
            source,
        };
        match event_type.as_str() {
            OPENED => serde_json::from_value(payload)
                .map(TicketEvent::Opened)
                .map_err(bad),
            COMMENTED => {
                #[derive(Deserialize)]
                struct C {
                    text: String,
                }
                serde_json::from_value::<C>(payload)
                    .map(|c| TicketEvent::Commented { text: c.text })
                    .map_err(bad)
            }
            CLOSED => Ok(TicketEvent::Closed),
            _ => Err(DecodeError::UnknownType(event_type.clone())),
        }
    }

    fn upcasters() -> Upcasters {
        upcasters()
    }
}

/// Version 1 of `ticket.opened` had no channel; version 2 requires one.
pub(crate) fn upcasters() -> Upcasters {
    Upcasters::new().register(OPENED, 1, |mut payload| {
        let object = payload
            .as_object_mut()
            .ok_or_else(|| "payload is not an object".to_owned())?;
        object
            .entry("channel")
            .or_insert_with(|| Value::from("unknown"));
        Ok(payload)
    })
}

impl EventSourced for Ticket {
    const CATEGORY: &'static str = "ticket";
    type Event = TicketEvent;

    fn evolve(&mut self, event: &TicketEvent, stamp: Stamp<'_>) {
        match event {
            TicketEvent::Opened(o) => {
                self.title = Some(o.title.clone());
                self.channel = Some(o.channel.clone());
                self.opened_by = stamp.actor().map(|a| a.as_str().to_owned());
                self.opened_at = Some(stamp.at());
            }
            TicketEvent::Commented { text } => self.comments.push(text.clone()),
            TicketEvent::Closed => self.closed = true,
        }
    }
}

impl Aggregate for TicketDesk {
    type State = Ticket;
    type Services = ();
    type Command = TicketCommand;
    type Rejection = TicketRejection;

    fn decide(
        state: &Ticket,
        command: &TicketCommand,
        _services: &(),
        _ctx: &Context<'_>,
    ) -> Result<Vec<TicketEvent>, TicketRejection> {
        match command {
            TicketCommand::Open { title, channel } => {
                if state.title.is_some() {
                    return Err(TicketRejection::AlreadyOpen);
                }
                Ok(vec![TicketEvent::Opened(Opened {
                    title: title.clone(),
                    channel: channel.clone(),
                })])
            }
            TicketCommand::Comment(text) => {
                state.ensure_open()?;
                if text.is_empty() {
                    return Err(TicketRejection::EmptyComment);
                }
                Ok(vec![TicketEvent::Commented { text: text.clone() }])
            }
            TicketCommand::Close => {
                state.ensure_open()?;
                Ok(vec![TicketEvent::Closed])
            }
        }
    }
}

impl Ticket {
    fn ensure_open(&self) -> Result<(), TicketRejection> {
        if self.title.is_none() {
            Err(TicketRejection::NotOpen)
        } else if self.closed {
            Err(TicketRejection::Closed)
        } else {
            Ok(())
        }
    }
}
