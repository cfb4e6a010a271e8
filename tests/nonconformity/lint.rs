//! The lint's 10.1 rules on nonconformity lifecycles.

use smsys::processes::nonconformity::{self, NonconformityManagement};
use smsys::processes::{Lifecycle, RecordRules, lint};

#[test]
fn the_reference_lifecycle_passes_and_a_careless_one_is_flagged_under_10_1() {
    let shipped = nonconformity::default_lifecycle();
    assert!(lint::check_lifecycle(&shipped).is_empty());
    assert!(lint::check_defaults().is_empty());

    let mut definition = shipped.definition().clone();
    for t in &mut definition.transitions {
        t.guards.retain(|g| {
            g.as_str() != "effectiveness_confirmed" && g.as_str() != "actions_implemented"
        });
    }
    let custom = Lifecycle::new(definition, &NonconformityManagement::vocabulary())
        .expect("still a valid lifecycle");
    let found: Vec<(String, &str)> = lint::check_lifecycle(&custom)
        .into_iter()
        .map(|f| (f.clause, f.rule))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "10.1".to_owned(),
                "nonconformity.review_without_implemented_action"
            ),
            (
                "10.1".to_owned(),
                "nonconformity.close_without_effectiveness_review"
            ),
        ]
    );
}
