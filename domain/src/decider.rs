//! The pure decide/evolve shape every aggregate has, and the thin cqrs-es adapter over it.
//!
//! Aggregates implement [`Decider`]; [`cqrs_aggregate!`](crate::cqrs_aggregate) turns that
//! into a `cqrs_es::Aggregate` with `Services = ()`. Nothing here does I/O or reads a clock.

/// A pure aggregate: decide turns a command into events against the current state, evolve
/// applies one event.
pub trait Decider {
    /// Imperative commands (`ReassignLead`).
    type Command;
    /// Past-tense events (`LeadReassigned`).
    type Event;
    /// The rules this aggregate enforces, one variant each.
    type Error;

    /// Decide which events a command produces, or why it is refused. An empty list is a
    /// no-op (for example a repeated upstream event).
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Apply one event to the state.
    fn evolve(&mut self, event: &Self::Event);
}

/// A display name with surrounding whitespace removed: `blank` when nothing is left,
/// `invalid` when it breaks the limits of a name (one line, no control characters, at most
/// [`MAX_NAME_CHARS`](crate::limits::MAX_NAME_CHARS) characters).
pub fn required_name<E>(
    name: &str,
    blank: E,
    invalid: impl FnOnce(crate::limits::TextFault) -> E,
) -> Result<String, E> {
    match crate::limits::line("name", name, crate::limits::MAX_NAME_CHARS) {
        Ok(name) => Ok(name),
        Err(crate::limits::TextFault::Empty(_)) => Err(blank),
        Err(fault) => Err(invalid(fault)),
    }
}

/// `Ok(())` when `rule_holds`, else the refusal: `ensure(!self.active, AlreadyActive)?`.
pub fn ensure<E>(rule_holds: bool, refusal: E) -> Result<(), E> {
    if rule_holds {
        Ok(())
    } else {
        Err(refusal)
    }
}

/// What a refusal says about the command, which decides how an edge answers it (HTTP: 422,
/// 404, 409, 403), never the spelling of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The input itself is not acceptable, whatever the state (`invalid_name`).
    InvalidInput,
    /// What the command names does not exist (in the caller's org).
    NotFound,
    /// The current state does not allow it (`already_claimed`, `never_signed_in`).
    Conflict,
    /// The caller may never do this.
    Forbidden,
}

/// A refusal with a stable machine code and its kind, as reported to API clients and dead
/// letters.
pub trait Refusal: std::error::Error {
    /// The stable, snake_case code of the rule that refused the command
    /// (`never_signed_in`), declared next to its kind.
    fn describe(&self) -> (&'static str, RefusalKind);

    /// The stable code.
    fn code(&self) -> &'static str {
        self.describe().0
    }

    /// The kind.
    fn kind(&self) -> RefusalKind {
        self.describe().1
    }
}

/// Implements `cqrs_es::Aggregate` for a [`Decider`] under a stored type name that never
/// changes.
#[macro_export]
macro_rules! cqrs_aggregate {
    ($aggregate:ty, $type_name:literal) => {
        impl ::cqrs_es::Aggregate for $aggregate {
            const TYPE: &'static str = $type_name;
            type Command = <$aggregate as $crate::decider::Decider>::Command;
            type Event = <$aggregate as $crate::decider::Decider>::Event;
            type Error = <$aggregate as $crate::decider::Decider>::Error;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &(),
                sink: &::cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                let events = $crate::decider::Decider::decide(&*self, command)?;
                for event in events {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                $crate::decider::Decider::evolve(self, &event);
            }
        }
    };
}

/// Implements `cqrs_es::DomainEvent` for an event enum: `event_type` is the variant name,
/// given as a literal per variant so renaming the Rust variant never changes stored data.
#[macro_export]
macro_rules! domain_event {
    ($event:ty, version $version:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl ::cqrs_es::DomainEvent for $event {
            fn event_type(&self) -> String {
                match self {
                    $(Self::$variant { .. } => $name,)+
                }
                .to_string()
            }

            fn event_version(&self) -> String {
                $version.to_string()
            }
        }
    };
}
