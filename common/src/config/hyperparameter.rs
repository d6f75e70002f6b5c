//! Hyperparameters: constants, ranges and lists, and their flat `type`-tagged form.

use serde::{Deserialize, Deserializer, Serialize, Serializer, ser};
use serde_json::Value;

use super::error::{Check, ConfigError, deserialize_tagged, require};

/// One hyperparameter: a constant, or a range or list the searcher draws from.
#[derive(Debug, Clone, PartialEq)]
pub enum Hyperparameter {
    /// A fixed value (a bare YAML value, or `type: const` with `val`).
    Const(Value),
    /// Integers from `minval` to `maxval` inclusive; `count` points in a grid.
    Int {
        /// Smallest value.
        minval: i64,
        /// Largest value.
        maxval: i64,
        /// Number of grid points (the grid searcher's resolution).
        count: Option<u32>,
    },
    /// Floats from `minval` to `maxval`; `count` points in a grid.
    Double {
        /// Smallest value.
        minval: f64,
        /// Largest value.
        maxval: f64,
        /// Number of grid points (required by the grid searcher).
        count: Option<u32>,
    },
    /// `base` raised to an exponent from `minval` to `maxval`; `count` points in a grid.
    Log {
        /// Smallest exponent.
        minval: f64,
        /// Largest exponent.
        maxval: f64,
        /// Base of the power (default 10).
        base: f64,
        /// Number of grid points (required by the grid searcher).
        count: Option<u32>,
    },
    /// One of a non-empty list of values.
    Categorical {
        /// The values to choose from.
        vals: Vec<Value>,
    },
}

/// A typed hyperparameter without its `type` key, under a key naming the type (as serde reads enums).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum TypedHyperparameter {
    Const {
        val: Value,
    },
    Int {
        minval: i64,
        maxval: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    Double {
        minval: f64,
        maxval: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    Log {
        minval: f64,
        maxval: f64,
        #[serde(default = "default_log_base")]
        base: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    Categorical {
        vals: Vec<Value>,
    },
}

const HYPERPARAMETER_TYPES: &[&str] = &["const", "int", "double", "log", "categorical"];

fn default_log_base() -> f64 {
    10.0
}

impl From<TypedHyperparameter> for Hyperparameter {
    fn from(typed: TypedHyperparameter) -> Self {
        match typed {
            TypedHyperparameter::Const { val } => Hyperparameter::Const(val),
            TypedHyperparameter::Int {
                minval,
                maxval,
                count,
            } => Hyperparameter::Int {
                minval,
                maxval,
                count,
            },
            TypedHyperparameter::Double {
                minval,
                maxval,
                count,
            } => Hyperparameter::Double {
                minval,
                maxval,
                count,
            },
            TypedHyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            } => Hyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            },
            TypedHyperparameter::Categorical { vals } => Hyperparameter::Categorical { vals },
        }
    }
}

impl Serialize for Hyperparameter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let typed = match self.clone() {
            // A constant map holding a `type` key must be spelled out, or it would read back as a range.
            Hyperparameter::Const(Value::Object(map)) if map.contains_key("type") => {
                TypedHyperparameter::Const {
                    val: Value::Object(map),
                }
            }
            Hyperparameter::Const(value) => return value.serialize(serializer),
            Hyperparameter::Int {
                minval,
                maxval,
                count,
            } => TypedHyperparameter::Int {
                minval,
                maxval,
                count,
            },
            Hyperparameter::Double {
                minval,
                maxval,
                count,
            } => TypedHyperparameter::Double {
                minval,
                maxval,
                count,
            },
            Hyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            } => TypedHyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            },
            Hyperparameter::Categorical { vals } => TypedHyperparameter::Categorical { vals },
        };
        // `{"int": {...}}` becomes `{"type": "int", ...}`.
        let external = serde_json::to_value(typed).map_err(ser::Error::custom)?;
        let mut flat = serde_json::Map::new();
        if let Value::Object(outer) = external {
            for (kind, fields) in outer {
                flat.insert("type".to_string(), Value::String(kind));
                if let Value::Object(fields) = fields {
                    flat.extend(fields);
                }
            }
        }
        flat.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Hyperparameter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match &value {
            Value::Object(map) if map.contains_key("type") => {
                let typed: TypedHyperparameter =
                    deserialize_tagged(map.clone(), HYPERPARAMETER_TYPES)?;
                Ok(typed.into())
            }
            _ => Ok(Hyperparameter::Const(value)),
        }
    }
}

impl Hyperparameter {
    /// Checks bounds, counts and bases; `path` is this hyperparameter's path.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let count_ok = |count: &Option<u32>| match count {
            Some(0) => Err(ConfigError::invalid(
                format!("{path}.count"),
                "must be at least 1 (got 0)",
            )),
            _ => Ok(()),
        };
        match self {
            Hyperparameter::Const(_) => Ok(()),
            Hyperparameter::Int {
                minval,
                maxval,
                count,
            } => {
                require(minval <= maxval, &format!("{path}.minval"), || {
                    format!("must not exceed maxval (got {minval} > {maxval})")
                })?;
                count_ok(count)
            }
            Hyperparameter::Double {
                minval,
                maxval,
                count,
            } => {
                float_range(path, *minval, *maxval)?;
                count_ok(count)
            }
            Hyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            } => {
                float_range(path, *minval, *maxval)?;
                require(
                    base.is_finite() && *base > 0.0 && *base != 1.0,
                    &format!("{path}.base"),
                    || format!("must be a positive number other than 1 (got {base})"),
                )?;
                for (field, exponent) in [("minval", minval), ("maxval", maxval)] {
                    let value = base.powf(*exponent);
                    require(
                        value.is_finite() && value > 0.0,
                        &format!("{path}.{field}"),
                        || {
                            format!(
                                "{base}^{exponent} is not a positive finite number; use a smaller exponent"
                            )
                        },
                    )?;
                }
                count_ok(count)
            }
            Hyperparameter::Categorical { vals } => {
                require(!vals.is_empty(), &format!("{path}.vals"), || {
                    "must list at least one value (got [])".to_string()
                })
            }
        }
    }
}

fn float_range(path: &str, minval: f64, maxval: f64) -> Check {
    for (field, value) in [("minval", minval), ("maxval", maxval)] {
        require(value.is_finite(), &format!("{path}.{field}"), || {
            format!("must be a finite number (got {value})")
        })?;
    }
    require(minval <= maxval, &format!("{path}.minval"), || {
        format!("must not exceed maxval (got {minval} > {maxval})")
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn const_map_with_type_key_round_trips() {
        let hp = Hyperparameter::Const(json!({"type": "adam", "beta": 0.9}));
        let text = serde_json::to_string(&hp).unwrap();
        assert_eq!(
            serde_json::from_str::<Hyperparameter>(&text).unwrap(),
            hp,
            "{text}"
        );
        let plain = Hyperparameter::Const(json!({"beta": 0.9}));
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"beta":0.9}"#);
    }
}
