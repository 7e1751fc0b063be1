//! Container names: validation and Docker-style generated names (`adjective_surname`).

const ADJECTIVES: &[&str] = &[
    "admiring",
    "bold",
    "brave",
    "busy",
    "calm",
    "clever",
    "cool",
    "dazzling",
    "eager",
    "elegant",
    "epic",
    "festive",
    "focused",
    "gallant",
    "gifted",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "kind",
    "lucid",
    "modest",
    "nice",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "tender",
    "vibrant",
    "wizardly",
    "zealous",
];

const SURNAMES: &[&str] = &[
    "albattani",
    "babbage",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "feynman",
    "galileo",
    "goldberg",
    "hamilton",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "lamarr",
    "lovelace",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "wozniak",
    "yalow",
];

/// A random `adjective_surname`.
pub fn generate() -> String {
    let a = ADJECTIVES[rand::random::<usize>() % ADJECTIVES.len()];
    let s = SURNAMES[rand::random::<usize>() % SURNAMES.len()];
    format!("{a}_{s}")
}

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional leading '/'.
pub fn validate(name: &str) -> Result<&str, String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let ok = n.len() >= 2
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(n)
    } else {
        Err(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate("/web").unwrap(), "web");
        assert!(validate("a b").is_err());
        assert!(validate("_x").is_err());
        assert!(validate(&generate()).is_ok());
    }
}
