//! The two sides of the trunk and the two directions a call crosses it.

use serde::{Deserialize, Serialize};

/// A side of the gateway: `Inside` faces the PBX (the agent), `Outside` the carrier (the
/// customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Inside,
    Outside,
}
text_enum!(Side, "side", { Inside => "inside", Outside => "outside" });

impl Side {
    pub fn other(&self) -> Side {
        match self {
            Side::Inside => Side::Outside,
            Side::Outside => Side::Inside,
        }
    }

    /// The direction of a call whose INVITE arrived on this side.
    pub fn direction_of_invite(self) -> Direction {
        match self {
            Side::Inside => Direction::Outbound,
            Side::Outside => Direction::Inbound,
        }
    }
}

/// Which way a call crosses the trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// PBX → carrier: the caller ID must be one of the trunk's numbers.
    Outbound,
    /// Carrier → PBX: the called number must be one of the trunk's numbers.
    Inbound,
}
text_enum!(Direction, "direction", { Outbound => "outbound", Inbound => "inbound" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invite_from_inside_is_outbound() {
        assert_eq!(Side::Inside.direction_of_invite(), Direction::Outbound);
        assert_eq!(Side::Outside.direction_of_invite(), Direction::Inbound);
        assert_eq!(Side::Inside.other(), Side::Outside);
        assert_eq!("outside".parse::<Side>(), Ok(Side::Outside));
        assert_eq!(Direction::Inbound.to_string(), "inbound");
    }
}
