//! Where each setting came from: the built-in defaults, one of the user's
//! files (with its line), or the project's `.bwai.json`. Used by
//! `bwai explain`: the merge is replayed file by file, so the answer is the
//! one the real merge gives, and nothing is recorded on the hot path.

use std::path::PathBuf;

use super::load::parse;
use super::Config;

/// One step of the merge: the configuration after this file was applied.
struct Step {
    /// `None` for the built-in defaults.
    file: Option<PathBuf>,
    text: String,
    config: Config,
}

/// The merge, replayed: defaults, then each file in the order it was read.
pub struct Origins {
    steps: Vec<Step>,
}

/// Where a value came from, for people: `default`, or `FILE:LINE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
}

impl Origin {
    pub fn default_value() -> Origin {
        Origin {
            file: None,
            line: None,
        }
    }

    pub fn is_default(&self) -> bool {
        self.file.is_none()
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line) {
            (None, _) => write!(f, "default"),
            (Some(p), Some(l)) => write!(f, "{}:{l}", p.display()),
            (Some(p), None) => write!(f, "{}", p.display()),
        }
    }
}

/// The line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    let offset = text.find(needle)?;
    Some(text[..offset].matches('\n').count() + 1)
}

impl Origins {
    /// Replay the merge of `files` (in the order `load` and `apply_project`
    /// read them) onto the defaults.
    pub fn trace(files: &[(PathBuf, String)]) -> Origins {
        let mut steps = vec![Step {
            file: None,
            text: String::new(),
            config: Config::default(),
        }];
        for (path, text) in files {
            let Ok(patch) = parse(path, text) else {
                continue;
            };
            let mut config = steps.last().map(|s| s.config.clone()).unwrap_or_default();
            patch.merge_into(&mut config);
            steps.push(Step {
                file: Some(path.clone()),
                text: text.clone(),
                config,
            });
        }
        Origins { steps }
    }

    fn origin_at(&self, i: usize, needle: &str) -> Origin {
        let step = &self.steps[i];
        Origin {
            file: step.file.clone(),
            line: step.file.as_ref().and_then(|_| line_of(&step.text, needle)),
        }
    }

    /// Who put `value` into the list `list` picks out: the last step that
    /// added it (a later `{"replace": [...]}` that keeps it re-adds it).
    pub fn of_item(&self, list: impl Fn(&Config) -> &Vec<String>, value: &str) -> Origin {
        let needle = serde_json::to_string(value).unwrap_or_default();
        let mut found = None;
        for (i, step) in self.steps.iter().enumerate() {
            let here = list(&step.config).iter().any(|v| v == value);
            let before = i > 0 && list(&self.steps[i - 1].config).iter().any(|v| v == value);
            if here && !before {
                found = Some(i);
            }
        }
        match found {
            Some(i) => self.origin_at(i, &needle),
            None => Origin::default_value(),
        }
    }

    /// Who last changed the value `get` picks out; `key` is the JSON key
    /// searched for the line.
    pub fn of_value<T: PartialEq>(&self, get: impl Fn(&Config) -> T, key: &str) -> Origin {
        let needle = format!("\"{key}\"");
        let mut found = None;
        for i in 1..self.steps.len() {
            if get(&self.steps[i].config) != get(&self.steps[i - 1].config) {
                found = Some(i);
            }
        }
        match found {
            Some(i) => self.origin_at(i, &needle),
            None => Origin::default_value(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file as `load` hands it on: its path and the text it read.
    fn file(name: &str, text: &str) -> (PathBuf, String) {
        (PathBuf::from("/cfg").join(name), text.to_string())
    }

    #[test]
    fn each_value_is_traced_to_the_file_and_line_that_added_it() {
        let (user, user_text) = file(
            "user.json",
            "{\n  \"filesystem\": {\n    \"read_only\": [\"~/tools\"]\n  },\n  \"network\": \"none\"\n}\n",
        );
        let (project, project_text) = file(
            "project.json",
            "{\"filesystem\": {\"protected\": [\"Makefile\"]}}",
        );
        let o = Origins::trace(&[(user.clone(), user_text), (project.clone(), project_text)]);
        fn ro(c: &Config) -> &Vec<String> {
            &c.filesystem.read_only
        }
        fn prot(c: &Config) -> &Vec<String> {
            &c.filesystem.protected
        }
        assert_eq!(o.of_item(ro, "/usr"), Origin::default_value());
        assert_eq!(
            o.of_item(ro, "~/tools"),
            Origin {
                file: Some(user.clone()),
                line: Some(3)
            }
        );
        assert_eq!(o.of_item(prot, "Makefile").file, Some(project));
        assert_eq!(o.of_item(prot, ".git/hooks").to_string(), "default");
        let net = o.of_value(|c| c.network, "network");
        assert_eq!(net.to_string(), format!("{}:5", user.display()));
    }
}
