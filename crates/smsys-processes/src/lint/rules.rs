//! The rules the lint applies: the structural checks every lifecycle meets, and per record
//! type the *gates* (an activity the standard requires before a stage or phase) as data.

use smsys_core::records::{
    Change, ChangeKind, Incident, KnownError, Nonconformity, Phase, Problem, RecordKind,
    RecordType, Release, ServiceRequest,
};

use crate::lifecycle::{Guard, Requirement, Transition, Trigger};
use crate::lint::graph::Graph;
use crate::{change, nonconformity, release};

/// The clause of the process a record type's lifecycle serves; record types the engine does
/// not ship fall under operational planning and control (8.1).
pub(crate) fn process_clause(record_type: &RecordType) -> &'static str {
    if *record_type == Incident::RECORD_TYPE {
        "8.6.1"
    } else if *record_type == ServiceRequest::RECORD_TYPE {
        "8.6.2"
    } else if *record_type == Problem::RECORD_TYPE || *record_type == KnownError::RECORD_TYPE {
        "8.6.3"
    } else if *record_type == Change::RECORD_TYPE {
        "8.5.1"
    } else if *record_type == Release::RECORD_TYPE {
        "8.5.3"
    } else if *record_type == Nonconformity::RECORD_TYPE {
        "10.1"
    } else {
        "8.1"
    }
}

/// A rule broken in a lifecycle: its id, clause and what to change.
pub(crate) struct Broken {
    pub(crate) rule: &'static str,
    pub(crate) clause: &'static str,
    pub(crate) message: String,
}

/// Where a gate's search starts.
enum Start {
    /// The initial status.
    Initial,
    /// Every status of this stage.
    Stage(&'static str),
    /// Every status a transition with this trigger leads to.
    EnteredBy(Trigger),
}

/// What a gate keeps out of reach until its activity is done.
enum Target {
    Stage(&'static str),
    Phase(Phase),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Stage(stage) => format!("stage {stage}"),
            Target::Phase(phase) => format!("phase {phase}"),
        }
    }
}

/// An activity the standard requires before a target: no status of the target may be reached
/// from the starts without passing a transition that carries one of `guards` or requires one
/// of `requires`.
struct Gate {
    rule: &'static str,
    clause: &'static str,
    activity: &'static str,
    starts: Vec<Start>,
    target: Target,
    guards: Vec<Guard>,
    requires: Vec<Requirement>,
}

impl Gate {
    fn new(
        rule: &'static str,
        clause: &'static str,
        activity: &'static str,
        target: Target,
    ) -> Self {
        Self {
            rule,
            clause,
            activity,
            starts: vec![Start::Initial],
            target,
            guards: Vec::new(),
            requires: Vec::new(),
        }
    }

    fn guards(mut self, guards: &[Guard]) -> Self {
        self.guards.extend_from_slice(guards);
        self
    }

    fn requires(mut self, requires: &[Requirement]) -> Self {
        self.requires.extend_from_slice(requires);
        self
    }

    fn from(mut self, starts: Vec<Start>) -> Self {
        self.starts = starts;
        self
    }

    fn passed_by(&self, t: &Transition) -> bool {
        t.guards.iter().any(|g| self.guards.contains(g))
            || t.requires.iter().any(|r| self.requires.contains(r))
    }

    fn what_passes(&self) -> String {
        let guards = names(self.guards.iter().map(Guard::as_str));
        let requires = names(self.requires.iter().map(|r| String::from(r.clone())));
        match (guards.is_empty(), requires.is_empty()) {
            (false, true) => format!("guarded by {guards}"),
            (true, false) => format!("requiring {requires}"),
            _ => format!("guarded by {guards} or requiring {requires}"),
        }
    }

    fn advice(&self) -> String {
        let guards = names(self.guards.iter().map(Guard::as_str));
        let requires = names(self.requires.iter().map(|r| String::from(r.clone())));
        match (guards.is_empty(), requires.is_empty()) {
            (false, true) => format!("guard a transition on every such path with {guards}"),
            (true, false) => format!("require {requires} on a transition on every such path"),
            _ => format!(
                "guard a transition on every such path with {guards} or require {requires} on it"
            ),
        }
    }

    fn check(&self, graph: &Graph<'_>) -> Option<Broken> {
        let d = graph.definition();
        let mut starts: Vec<&str> = Vec::new();
        for start in &self.starts {
            match start {
                Start::Initial => starts.push(d.initial.as_str()),
                Start::Stage(stage) => starts.extend(
                    graph
                        .statuses()
                        .iter()
                        .filter(|s| s.stage.as_deref() == Some(*stage))
                        .map(|s| s.name.as_str()),
                ),
                Start::EnteredBy(trigger) => starts.extend(
                    graph
                        .transitions()
                        .iter()
                        .filter(|t| &t.trigger == trigger)
                        .map(|t| t.to.as_str()),
                ),
            }
        }
        let walk = graph.walk(&starts, |t| !self.passed_by(t));
        let hit = walk.reached().find(|name| {
            graph.status(name).is_some_and(|s| match &self.target {
                Target::Stage(stage) => s.stage.as_deref() == Some(*stage),
                Target::Phase(phase) => s.phase == *phase,
            })
        })?;
        let path = walk.path_to(hit).join(" -> ");
        Some(Broken {
            rule: self.rule,
            clause: self.clause,
            message: format!(
                "{} is skipped on the way to status {hit:?} ({}): {path} passes no transition {}; {}",
                self.activity,
                self.target.describe(),
                self.what_passes(),
                self.advice(),
            ),
        })
    }
}

fn names(items: impl Iterator<Item = impl AsRef<str>>) -> String {
    items
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The structural rules: every status reachable, a closed status reachable, no dead end.
pub(crate) fn structure(graph: &Graph<'_>, clause: &'static str) -> Vec<Broken> {
    let d = graph.definition();
    let mut broken = Vec::new();
    let from_initial = graph.walk(&[d.initial.as_str()], |_| true);
    for s in graph.statuses() {
        if !from_initial.contains(&s.name) {
            broken.push(Broken {
                rule: "lifecycle.unreachable_status",
                clause,
                message: format!(
                    "status {:?} cannot be reached from the initial status {:?}; add a transition into it or remove it",
                    s.name, d.initial
                ),
            });
        }
    }
    let closes = from_initial
        .reached()
        .any(|name| graph.status(name).is_some_and(|s| s.phase == Phase::Closed));
    if !closes {
        broken.push(Broken {
            rule: "lifecycle.no_closed_status",
            clause,
            message: format!(
                "no status of phase closed can be reached from the initial status {:?}, so no record is ever closed once its work is done; add a closed status and a transition into it",
                d.initial
            ),
        });
    }
    for s in graph.statuses().iter().filter(|s| !s.phase.is_final()) {
        let ends = graph
            .walk(&[s.name.as_str()], |_| true)
            .reached()
            .any(|name| graph.status(name).is_some_and(|s| s.phase.is_final()));
        if !ends {
            broken.push(Broken {
                rule: "lifecycle.dead_end",
                clause,
                message: format!(
                    "from status {:?} no closed or cancelled status can be reached; add a transition out of it",
                    s.name
                ),
            });
        }
    }
    broken
}

/// The rules of the record type's process; `kind` narrows a change lifecycle's rules to its
/// kind (without it, implementation needs authorisation or a pinned template).
pub(crate) fn process(graph: &Graph<'_>, kind: Option<ChangeKind>) -> Vec<Broken> {
    let record_type = &graph.definition().record_type;
    let gates = if *record_type == Incident::RECORD_TYPE {
        incident()
    } else if *record_type == ServiceRequest::RECORD_TYPE {
        request()
    } else if *record_type == Problem::RECORD_TYPE {
        problem()
    } else if *record_type == KnownError::RECORD_TYPE {
        known_error()
    } else if *record_type == Change::RECORD_TYPE {
        changes(kind)
    } else if *record_type == Release::RECORD_TYPE {
        releases()
    } else if *record_type == Nonconformity::RECORD_TYPE {
        nonconformities()
    } else {
        Vec::new()
    };
    let mut broken: Vec<Broken> = gates.iter().filter_map(|g| g.check(graph)).collect();
    if *record_type == Change::RECORD_TYPE {
        broken.extend(change_failure_recordable(graph));
    }
    broken
}

fn incident() -> Vec<Gate> {
    const C: &str = "8.6.1";
    vec![
        Gate::new(
            "incident.resolve_without_classification",
            C,
            "classification",
            Target::Phase(Phase::Resolved),
        )
        .requires(&[Requirement::Category]),
        Gate::new(
            "incident.resolve_without_priority",
            C,
            "prioritisation",
            Target::Phase(Phase::Resolved),
        )
        .requires(&[Requirement::Priority]),
        Gate::new(
            "incident.close_without_resolution",
            C,
            "a recorded resolution",
            Target::Phase(Phase::Closed),
        )
        .guards(&[Guard::RESOLUTION_RECORDED])
        .requires(&[Requirement::ResolutionCode]),
        Gate::new(
            "incident.close_without_major_review",
            C,
            "the review of a major incident",
            Target::Phase(Phase::Closed),
        )
        .guards(&[Guard::MAJOR_REVIEW_DONE]),
    ]
}

fn request() -> Vec<Gate> {
    const C: &str = "8.6.2";
    vec![
        Gate::new(
            "request.fulfil_without_approval",
            C,
            "approval",
            Target::Phase(Phase::Resolved),
        )
        .from(vec![Start::EnteredBy(Trigger::REQUEST_APPROVAL)])
        .guards(&[Guard::APPROVED]),
        Gate::new(
            "request.close_without_resolution",
            C,
            "a recorded fulfilment",
            Target::Phase(Phase::Closed),
        )
        .guards(&[Guard::RESOLUTION_RECORDED])
        .requires(&[Requirement::ResolutionCode]),
    ]
}

fn problem() -> Vec<Gate> {
    const C: &str = "8.6.3";
    vec![
        Gate::new(
            "problem.close_without_root_cause_or_accepted_risk",
            C,
            "a root cause, a resolution or an accepted risk",
            Target::Phase(Phase::Closed),
        )
        .guards(&[
            Guard::RESOLUTION_OR_RISK_ACCEPTED,
            Guard::ROOT_CAUSE_RECORDED,
            Guard::RISK_ACCEPTED,
        ]),
        Gate::new(
            "problem.close_without_fix_review",
            C,
            "the review of the fix's effectiveness",
            Target::Phase(Phase::Closed),
        )
        .guards(&[Guard::FIX_REVIEWED]),
    ]
}

fn known_error() -> Vec<Gate> {
    vec![
        Gate::new(
            "known_error.publish_without_content",
            "8.6.3",
            "a recorded symptom and workaround",
            Target::Phase(Phase::Active),
        )
        .guards(&[Guard::CONTENT_COMPLETE]),
    ]
}

fn changes(kind: Option<ChangeKind>) -> Vec<Gate> {
    const C: &str = "8.5.1";
    let implement = || Target::Stage(change::stage::IMPLEMENT);
    let failed = || {
        vec![
            Start::EnteredBy(Trigger::FAIL),
            Start::Stage(change::stage::REMEDIATE),
        ]
    };
    let mut gates = vec![
        Gate::new(
            "change.implement_without_plan",
            C,
            "a plan with its remediation plan",
            implement(),
        )
        .guards(&[Guard::PLANNED]),
        Gate::new(
            "change.close_without_review",
            C,
            "the post-implementation review",
            Target::Phase(Phase::Closed),
        )
        .guards(&[Guard::REVIEWED]),
        Gate::new(
            "change.failure_without_remediation",
            C,
            "the executed remediation plan",
            Target::Phase(Phase::Closed),
        )
        .from(failed())
        .guards(&[Guard::REMEDIATION_EXECUTED]),
        Gate::new(
            "change.failure_not_investigated",
            C,
            "the investigation of the failure",
            Target::Phase(Phase::Closed),
        )
        .from(failed())
        .guards(&[Guard::FAILURE_INVESTIGATED]),
    ];
    let authorisation = |guards: &[Guard]| {
        Gate::new(
            "change.implement_before_authorisation",
            C,
            "authorisation",
            implement(),
        )
        .guards(guards)
    };
    match kind {
        None => gates.push(authorisation(&[Guard::AUTHORISED, Guard::TEMPLATE_PINNED])),
        Some(ChangeKind::Standard) => gates.push(
            Gate::new(
                "change.implement_without_template",
                C,
                "a pinned, pre-authorised template",
                implement(),
            )
            .guards(&[Guard::TEMPLATE_PINNED]),
        ),
        Some(ChangeKind::Normal) => {
            gates.push(authorisation(&[Guard::AUTHORISED]));
            gates.push(
                Gate::new(
                    "change.implement_without_assessment",
                    C,
                    "assessment",
                    implement(),
                )
                .guards(&[Guard::ASSESSED]),
            );
        }
        Some(ChangeKind::Emergency) => {
            gates.push(authorisation(&[Guard::AUTHORISED]));
            gates.push(
                Gate::new(
                    "change.close_without_assessment",
                    C,
                    "the retrospective assessment",
                    Target::Phase(Phase::Closed),
                )
                .guards(&[Guard::ASSESSED]),
            );
        }
    }
    gates
}

/// A change lifecycle with an implementation stage must let the implementation fail: without
/// a `fail` transition out of it, the remediation a failed change needs cannot be recorded.
fn change_failure_recordable(graph: &Graph<'_>) -> Option<Broken> {
    let implementing: Vec<&str> = graph
        .statuses()
        .iter()
        .filter(|s| s.stage.as_deref() == Some(change::stage::IMPLEMENT))
        .map(|s| s.name.as_str())
        .collect();
    let first = implementing.first()?;
    let can_fail = graph.transitions().iter().any(|t| {
        t.trigger == Trigger::FAIL && t.from.iter().any(|f| implementing.contains(&f.as_str()))
    });
    (!can_fail).then(|| Broken {
        rule: "change.failure_not_recordable",
        clause: "8.5.1",
        message: format!(
            "no transition triggered by fail leaves status {first:?} (stage implement), so a failed implementation and its remediation cannot be recorded; add a fail transition into a remediate status"
        ),
    })
}

fn releases() -> Vec<Gate> {
    const C: &str = "8.5.3";
    let deploying = || Target::Stage(release::stage::DEPLOYING);
    vec![
        Gate::new(
            "release.accept_without_criteria",
            C,
            "the verification of the acceptance criteria",
            Target::Stage(release::stage::ACCEPTED),
        )
        .guards(&[Guard::CRITERIA_MET]),
        Gate::new(
            "release.deploy_without_acceptance",
            C,
            "the verification of the acceptance criteria",
            deploying(),
        )
        .guards(&[Guard::CRITERIA_MET]),
        Gate::new(
            "release.deploy_without_approval",
            C,
            "approval",
            deploying(),
        )
        .guards(&[Guard::AUTHORISED]),
        Gate::new(
            "release.deploy_without_baseline",
            C,
            "a baseline of the affected CIs",
            deploying(),
        )
        .from(vec![
            Start::Initial,
            Start::Stage(release::stage::FAILED),
            Start::Stage(release::stage::ROLLED_BACK),
        ])
        .guards(&[Guard::BASELINE_TAKEN]),
        Gate::new(
            "release.close_without_early_life_review",
            C,
            "the early-life review",
            Target::Phase(Phase::Closed),
        )
        .guards(&[Guard::EARLY_LIFE_REVIEWED]),
    ]
}

fn nonconformities() -> Vec<Gate> {
    const C: &str = "10.1";
    vec![
        Gate::new(
            "nonconformity.review_without_implemented_action",
            C,
            "the implementation of the corrective action",
            Target::Stage(nonconformity::stage::EFFECTIVE),
        )
        .guards(&[Guard::ACTIONS_IMPLEMENTED]),
        Gate::new(
            "nonconformity.close_without_effectiveness_review",
            C,
            "a review that found the corrective action effective",
            Target::Phase(Phase::Closed),
        )
        .guards(&[Guard::EFFECTIVENESS_CONFIRMED]),
    ]
}
