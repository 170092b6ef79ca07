//! HAVING conditions evaluated on merged groups. Numbers compare exactly
//! (DECIMAL) or as doubles; binary strings as bytes. Text under a collation
//! and temporal values are refused rather than compared approximately.

use std::cmp::Ordering;

use super::decimal::Dec;
use super::pipeline::Schema;
use super::row::Row;
use super::spec::{ArithOp, CmpOp, Expr};
use super::value::{parse_f64, Kind};
use super::MergeError;

#[derive(Debug, Clone)]
enum V {
    Null,
    Dec(Dec),
    F(f64),
    /// A binary string, or a literal (which converts to the other side's type).
    Bytes(Vec<u8>, bool),
}

/// Does the condition hold for this merged row? (NULL does not.)
pub fn holds(e: &Expr, row: &Row, schema: &Schema) -> Result<bool, MergeError> {
    Ok(truth(&eval(e, row, schema)?) == Some(true))
}

fn truth(v: &V) -> Option<bool> {
    match v {
        V::Null => None,
        V::Dec(d) => Some(!d.is_zero()),
        V::F(f) => Some(*f != 0.0),
        V::Bytes(b, _) => Some(parse_f64(b) != 0.0 && !parse_f64(b).is_nan()),
    }
}

fn boolean(b: Option<bool>) -> V {
    match b {
        None => V::Null,
        Some(b) => V::Dec(Dec::from_u64(u64::from(b))),
    }
}

fn eval(e: &Expr, row: &Row, schema: &Schema) -> Result<V, MergeError> {
    Ok(match e {
        Expr::Col(c) => {
            let Some(raw) = row.get(c.index(schema.visible)) else { return Ok(V::Null) };
            match schema.kind(*c) {
                Kind::Int | Kind::Decimal => Dec::parse(raw).map_or_else(|| V::F(parse_f64(raw)), V::Dec),
                Kind::Float => V::F(parse_f64(raw)),
                Kind::Bytes if schema.meta(*c).is_some_and(|m| m.charset == super::value::BINARY_CHARSET) => {
                    V::Bytes(raw.to_vec(), false)
                }
                _ => {
                    return Err(MergeError::unsupported(
                        "HAVING compares a text or temporal value across shards; \
                         compare a number, or add a shard key condition",
                    ))
                }
            }
        }
        Expr::Num(s) => Dec::parse(s.as_bytes()).map_or_else(|| V::F(parse_f64(s.as_bytes())), V::Dec),
        Expr::Str(s) => V::Bytes(s.clone(), true),
        Expr::Null => V::Null,
        Expr::Cmp(op, a, b) => {
            let (a, b) = (eval(a, row, schema)?, eval(b, row, schema)?);
            if *op == CmpOp::Spaceship {
                return Ok(boolean(Some(match (&a, &b) {
                    (V::Null, V::Null) => true,
                    (V::Null, _) | (_, V::Null) => false,
                    _ => cmp(&a, &b)? == Ordering::Equal,
                })));
            }
            if matches!(a, V::Null) || matches!(b, V::Null) {
                return Ok(V::Null);
            }
            let o = cmp(&a, &b)?;
            boolean(Some(match op {
                CmpOp::Eq | CmpOp::Spaceship => o == Ordering::Equal,
                CmpOp::NotEq => o != Ordering::Equal,
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::LtEq => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::GtEq => o != Ordering::Less,
            }))
        }
        Expr::Arith(op, a, b) => {
            let (a, b) = (eval(a, row, schema)?, eval(b, row, schema)?);
            if matches!(a, V::Null) || matches!(b, V::Null) {
                return Ok(V::Null);
            }
            match (op, &a, &b) {
                (ArithOp::Add, V::Dec(x), V::Dec(y)) => V::Dec(x.add(y)),
                (ArithOp::Sub, V::Dec(x), V::Dec(y)) => V::Dec(x.add(&y.neg())),
                _ => {
                    let (x, y) = (num(&a), num(&b));
                    match op {
                        ArithOp::Add => V::F(x + y),
                        ArithOp::Sub => V::F(x - y),
                        ArithOp::Mul => V::F(x * y),
                        ArithOp::Div if y == 0.0 => V::Null,
                        ArithOp::Div => V::F(x / y),
                    }
                }
            }
        }
        Expr::Neg(a) => match eval(a, row, schema)? {
            V::Dec(d) => V::Dec(d.neg()),
            V::Null => V::Null,
            other => V::F(-num(&other)),
        },
        Expr::And(a, b) => {
            let (x, y) = (truth(&eval(a, row, schema)?), truth(&eval(b, row, schema)?));
            boolean(match (x, y) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            })
        }
        Expr::Or(a, b) => {
            let (x, y) = (truth(&eval(a, row, schema)?), truth(&eval(b, row, schema)?));
            boolean(match (x, y) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            })
        }
        Expr::Not(a) => boolean(truth(&eval(a, row, schema)?).map(|b| !b)),
        Expr::IsNull { expr, negated } => {
            let null = matches!(eval(expr, row, schema)?, V::Null);
            boolean(Some(null != *negated))
        }
        Expr::Between { expr, low, high, negated } => {
            let ge = Expr::Cmp(CmpOp::GtEq, expr.clone(), low.clone());
            let le = Expr::Cmp(CmpOp::LtEq, expr.clone(), high.clone());
            let both = eval(&Expr::And(Box::new(ge), Box::new(le)), row, schema)?;
            if *negated {
                boolean(truth(&both).map(|b| !b))
            } else {
                both
            }
        }
        Expr::InList { expr, list, negated } => {
            let x = eval(expr, row, schema)?;
            if matches!(x, V::Null) {
                return Ok(V::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for item in list {
                let y = eval(item, row, schema)?;
                if matches!(y, V::Null) {
                    saw_null = true;
                } else if cmp(&x, &y)? == Ordering::Equal {
                    found = true;
                    break;
                }
            }
            boolean(if found {
                Some(!*negated)
            } else if saw_null {
                None
            } else {
                Some(*negated)
            })
        }
    })
}

fn num(v: &V) -> f64 {
    match v {
        V::Dec(d) => d.to_f64(),
        V::F(f) => *f,
        V::Bytes(b, _) => parse_f64(b),
        V::Null => f64::NAN,
    }
}

fn cmp(a: &V, b: &V) -> Result<Ordering, MergeError> {
    Ok(match (a, b) {
        (V::Dec(x), V::Dec(y)) => x.cmp(y),
        (V::Bytes(x, _), V::Bytes(y, _)) => x.cmp(y),
        (V::Bytes(_, false), _) | (_, V::Bytes(_, false)) => {
            return Err(MergeError::unsupported("HAVING compares a binary string with a number across shards"))
        }
        _ => num(a).partial_cmp(&num(b)).unwrap_or(Ordering::Equal),
    })
}
