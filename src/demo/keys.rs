//! The demo's pools. Each simulated key behaves one way, chosen by its
//! secret, so the dashboard shows every state a real pool can be in. The
//! secrets are made up and useless anywhere else; their last four
//! characters (all a masked key shows) say what each one does.

/// How a simulated key answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers every request.
    Healthy,
    /// Runs out of its small per-minute request budget now and then and
    /// answers 429 with `retry-after` until the window refills.
    RateLimits,
    /// Answers about a quarter of requests with 529 `overloaded_error`.
    Overloaded,
    /// The upstream refuses it: 401 `authentication_error`.
    Rejected,
}

pub struct DemoKey {
    pub secret: &'static str,
    pub behaviour: Behaviour,
}

pub const ANTHROPIC: &[DemoKey] = &[
    DemoKey {
        secret: "sk-ant-demo-00000000000000000000-HLT1",
        behaviour: Behaviour::Healthy,
    },
    DemoKey {
        secret: "sk-ant-demo-00000000000000000000-HLT2",
        behaviour: Behaviour::Healthy,
    },
    DemoKey {
        secret: "sk-ant-demo-00000000000000000000-RATE",
        behaviour: Behaviour::RateLimits,
    },
    DemoKey {
        secret: "sk-ant-demo-00000000000000000000-B529",
        behaviour: Behaviour::Overloaded,
    },
    DemoKey {
        secret: "sk-ant-demo-00000000000000000000-DEAD",
        behaviour: Behaviour::Rejected,
    },
];

pub const OPENAI: &[DemoKey] = &[
    DemoKey {
        secret: "sk-proj-demo-0000000000000000000-OK01",
        behaviour: Behaviour::Healthy,
    },
    DemoKey {
        secret: "sk-proj-demo-0000000000000000000-OK02",
        behaviour: Behaviour::Healthy,
    },
    DemoKey {
        secret: "sk-proj-demo-0000000000000000000-RATE",
        behaviour: Behaviour::RateLimits,
    },
];

/// The behaviour of the key a request carries; an unknown key is refused,
/// as a real upstream would.
pub fn behaviour_of(secret: &str) -> Behaviour {
    ANTHROPIC
        .iter()
        .chain(OPENAI)
        .find(|key| key.secret == secret)
        .map_or(Behaviour::Rejected, |key| key.behaviour)
}
