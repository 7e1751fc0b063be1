//! The engine's event stream (`docker events`): what happened to containers and images,
//! kept in a bounded in-memory log for `--since` and broadcast to live listeners.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bollard_stubs::models::{
    EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum,
};
use tokio::sync::broadcast;

/// How many past events `--since` can reach.
const KEEP: usize = 1024;

pub struct Events {
    past: Mutex<VecDeque<EventMessage>>,
    live: broadcast::Sender<EventMessage>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            past: Mutex::new(VecDeque::with_capacity(KEEP)),
            live: broadcast::channel(KEEP).0,
        }
    }
}

impl Events {
    pub fn emit(
        &self,
        typ: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attributes: impl IntoIterator<Item = (String, String)>,
    ) {
        let now = chrono::Utc::now();
        let msg = EventMessage {
            typ: Some(typ),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(attributes.into_iter().collect::<HashMap<_, _>>()),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(now.timestamp()),
            time_nano: now.timestamp_nanos_opt(),
        };
        let mut past = self.past.lock().unwrap_or_else(|p| p.into_inner());
        if past.len() == KEEP {
            past.pop_front();
        }
        past.push_back(msg.clone());
        let _ = self.live.send(msg);
    }

    /// Past events from `since` (Unix nanoseconds), and a receiver for what follows.
    pub fn subscribe(
        &self,
        since_nanos: Option<i64>,
    ) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let past = self.past.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.live.subscribe();
        let old = match since_nanos {
            Some(s) => past
                .iter()
                .filter(|m| m.time_nano.unwrap_or(0) >= s)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (old, rx)
    }
}

/// `docker events --filter`: type, event/action, container, image, label.
#[derive(Debug, Default, Clone)]
pub struct EventFilters {
    pub typ: Vec<String>,
    pub event: Vec<String>,
    pub container: Vec<String>,
    pub image: Vec<String>,
    pub label: Vec<String>,
}

impl EventFilters {
    pub fn matches(&self, m: &EventMessage) -> bool {
        let typ = m.typ.map(|t| t.to_string()).unwrap_or_default();
        let action = m.action.clone().unwrap_or_default();
        let id = m
            .actor
            .as_ref()
            .and_then(|a| a.id.clone())
            .unwrap_or_default();
        let attrs = m
            .actor
            .as_ref()
            .and_then(|a| a.attributes.clone())
            .unwrap_or_default();
        let name = attrs.get("name").cloned().unwrap_or_default();
        let image = attrs.get("image").cloned().unwrap_or_default();
        let base_action = action.split(':').next().unwrap_or("").to_string();
        (self.typ.is_empty() || self.typ.contains(&typ))
            && (self.event.is_empty()
                || self.event.contains(&action)
                || self.event.contains(&base_action))
            && (self.container.is_empty()
                || (typ == "container"
                    && self
                        .container
                        .iter()
                        .any(|c| *c == name || id.starts_with(c.as_str()))))
            && (self.image.is_empty()
                || self
                    .image
                    .iter()
                    .any(|i| *i == image || (typ == "image" && (*i == id || *i == name))))
            && self.label.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => attrs.get(k).is_some_and(|x| x == v),
                None => attrs.contains_key(l.as_str()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_history_and_filters() {
        let ev = Events::default();
        ev.emit(
            EventMessageTypeEnum::CONTAINER,
            "start",
            "abc123",
            [
                ("name".to_string(), "web".to_string()),
                ("image".to_string(), "busybox".to_string()),
            ],
        );
        ev.emit(EventMessageTypeEnum::IMAGE, "pull", "busybox:latest", []);
        let (past, _rx) = ev.subscribe(Some(0));
        assert_eq!(past.len(), 2);
        let f = EventFilters {
            typ: vec!["container".into()],
            container: vec!["web".into()],
            ..Default::default()
        };
        assert!(f.matches(&past[0]) && !f.matches(&past[1]));
        let f = EventFilters {
            event: vec!["pull".into()],
            ..Default::default()
        };
        assert!(!f.matches(&past[0]) && f.matches(&past[1]));
    }
}
