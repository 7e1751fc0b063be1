//! Dockerfiles as `docker build` sends them in the context: `dockerfile::parse`, then
//! what the builder does with each instruction's text (JSON form, `$VAR` expansion
//! with the ARG/ENV values seen so far).

#![no_main]

use std::collections::HashMap;

use berth_agent::build::dockerfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(steps) = dockerfile::parse(text) else {
        return;
    };
    let mut vars: HashMap<String, String> = HashMap::new();
    for step in &steps {
        assert!(
            dockerfile::KNOWN.contains(&step.keyword.as_str()),
            "parse accepted the unknown instruction {:?}",
            step.keyword
        );
        let expanded = dockerfile::expand(&step.rest, &vars);
        let _ = dockerfile::json_form(&step.rest);
        let _ = dockerfile::json_form(&expanded);
        if matches!(step.keyword.as_str(), "ARG" | "ENV") {
            let (k, v) = expanded
                .split_once(['=', ' '])
                .unwrap_or((expanded.as_str(), ""));
            vars.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
});
