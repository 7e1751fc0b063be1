//! Swarm mode's routes (`/swarm`, `/nodes`, `/services`, `/tasks`, `/secrets`,
//! `/configs`). Berth has no swarm mode, so it answers them as a dockerd that never
//! joined a swarm does: 503 with dockerd's words. Clients read these, not a 404: the
//! CLI's `docker swarm leave` and `docker node ls` print them, and docker-py and
//! Compose treat "not part of a swarm" as the ordinary state of a single engine.

use hyper::{Method, StatusCode};

use super::error::ApiError;

const NOT_PART: &str = "This node is not part of a swarm";
const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \
                           \"docker swarm join\" to connect this node to swarm and try again.";

/// Whether the route's first segment is one of swarm mode's.
pub fn owns(first: &str) -> bool {
    matches!(
        first,
        "swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs"
    )
}

/// The answer to a swarm-mode route.
pub fn unavailable(method: &Method, segs: &[&str]) -> ApiError {
    let message = match (method, segs) {
        (&Method::POST, ["swarm", "leave"]) => NOT_PART.to_string(),
        // dockerd would make or join a swarm here; Berth cannot, and says so.
        (&Method::POST, ["swarm", verb @ ("init" | "join")]) => format!(
            "Berth does not run swarm mode, so it cannot {verb} a swarm: use Docker Engine \
             for a swarm"
        ),
        _ => NOT_MANAGER.to_string(),
    };
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_routes_answer_as_a_dockerd_outside_a_swarm() {
        let leave = unavailable(&Method::POST, &["swarm", "leave"]);
        assert_eq!(leave.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(leave.message, NOT_PART);
        for segs in [&["swarm"][..], &["nodes"], &["services", "x"], &["secrets"]] {
            let e = unavailable(&Method::GET, segs);
            assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(e.message.starts_with("This node is not a swarm manager"));
        }
        assert!(unavailable(&Method::POST, &["swarm", "init"])
            .message
            .contains("cannot init a swarm"));
        assert!(owns("configs") && owns("tasks") && !owns("containers") && !owns("plugins"));
    }
}
