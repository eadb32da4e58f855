//! Configuration problems: one per mistake (which variable, what is wrong, how to fix it),
//! collected so one restart fixes them all.

/// One configuration mistake: which variable, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The variable or file key at fault, e.g. `LATCHKEY_SEAL_KEY`.
    pub variable: String,
    /// What is wrong with it, never showing a secret value.
    pub what: String,
    /// What to do about it.
    pub fix: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}\n    fix: {}", self.variable, self.what, self.fix)
    }
}

/// Every problem found, reported together so one restart fixes them all.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<ConfigProblem>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "configuration has {} problem(s):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl Problems {
    /// Records a problem.
    pub fn push(
        &mut self,
        variable: impl Into<String>,
        what: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(ConfigProblem {
            variable: variable.into(),
            what: what.into(),
            fix: fix.into(),
        });
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}
