//! Properties over random commands by random actors: closure only after an effective review
//! that came after implemented actions; no review before the actions are implemented; no
//! action owner reviews; every earlier step is kept; replay gives the same state.

use proptest::prelude::*;
use smsys::core::records::RecordKind;
use smsys::core::records::nonconformity::CorrectiveActionEvent;
use smsys::core::records::{NonconformityEvent, RecordEvent, TypedEvent};

use crate::harness::{Desk, OWNER, QUALITY, commands};

const ACTORS: [&str; 3] = [QUALITY, OWNER, "rui"];

fn own(event: &NonconformityEvent) -> Option<&CorrectiveActionEvent> {
    match event {
        TypedEvent::Own(own) => Some(own),
        TypedEvent::Logged(_) | TypedEvent::Record(_) => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn corrective_action_keeps_its_order_and_its_history(
        steps in prop::collection::vec((0usize..8, 0usize..3), 0..40)
    ) {
        let all = commands();
        let mut desk = Desk::raised("NC-0001");
        for (c, a) in steps {
            let before = desk.state.clone();
            let (name, command) = &all[c];
            let who = ACTORS[a];
            if desk.run(who, command).is_err() {
                prop_assert_eq!(&desk.state, &before, "a refusal changes nothing");
                continue;
            }
            let after = &desk.state;
            // History retained: every earlier step is still there, in order.
            prop_assert!(after.analyses().starts_with(before.analyses()));
            prop_assert!(after.plans().starts_with(before.plans()));
            prop_assert!(after.implementations().starts_with(before.implementations()));
            prop_assert!(after.reviews().starts_with(before.reviews()));
            prop_assert!(after.corrections().starts_with(before.corrections()));
            if name.ends_with("effective") {
                prop_assert!(before.implementation().is_some(), "reviewed before implementation");
                prop_assert!(who != OWNER, "an action owner reviewed");
            }
            if after.record().status() == Some("closed") {
                prop_assert!(after.effective_review().is_some());
            }
        }
        // Closure only after an effective review that came after an implementation.
        let mut implemented = false;
        let mut effective = false;
        for (event, _, _) in &desk.events {
            match own(event) {
                Some(CorrectiveActionEvent::ActionImplemented { .. }) => implemented = true,
                Some(CorrectiveActionEvent::EffectivenessReviewed { effective: e, .. }) => {
                    prop_assert!(implemented, "a review before any implementation");
                    effective |= *e;
                    implemented = *e;
                }
                Some(_) | None => {}
            }
            if let TypedEvent::Record(RecordEvent::Transitioned { to, .. }) = event
                && to == "closed"
            {
                prop_assert!(effective, "closed without an effective review");
            }
        }
        prop_assert_eq!(desk.replayed(), desk.state.clone());
    }
}
