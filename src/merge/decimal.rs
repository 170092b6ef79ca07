//! Exact decimal arithmetic on MySQL's text form of DECIMAL values, for the
//! few operations a merge needs: compare, add, divide by a count. Any number
//! of digits (MySQL's DECIMAL has up to 65).

use std::cmp::Ordering;

/// `digits` (most significant first, no leading zeros beyond one) scaled by
/// 10^-scale, with a sign. Zero is never negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dec {
    neg: bool,
    digits: Vec<u8>,
    scale: usize,
}

impl Dec {
    pub fn zero() -> Dec {
        Dec { neg: false, digits: vec![0], scale: 0 }
    }

    pub fn from_u64(v: u64) -> Dec {
        Dec::parse(v.to_string().as_bytes()).expect("digits")
    }

    /// `[-+]ddd[.ddd]`; exponents are not DECIMAL text and give `None`.
    pub fn parse(s: &[u8]) -> Option<Dec> {
        let (neg, body) = match s.first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let mut digits = Vec::with_capacity(body.len());
        let mut scale = None;
        for &c in body {
            match c {
                b'0'..=b'9' => {
                    digits.push(c - b'0');
                    if let Some(s) = scale.as_mut() {
                        *s += 1;
                    }
                }
                b'.' if scale.is_none() => scale = Some(0),
                _ => return None,
            }
        }
        if digits.is_empty() {
            return None;
        }
        let mut d = Dec { neg, digits, scale: scale.unwrap_or(0) };
        d.normalize();
        Some(d)
    }

    fn normalize(&mut self) {
        let lead = self.digits.iter().take(self.digits.len().saturating_sub(self.scale + 1)).take_while(|&&d| d == 0);
        let n = lead.count();
        self.digits.drain(..n);
        if self.digits.iter().all(|&d| d == 0) {
            self.neg = false;
        }
    }

    fn with_scale(&self, scale: usize) -> Vec<u8> {
        let mut v = self.digits.clone();
        v.resize(v.len() + scale.saturating_sub(self.scale), 0);
        v
    }

    fn cmp_magnitude(a: &[u8], b: &[u8]) -> Ordering {
        let a = &a[a.iter().position(|&d| d != 0).unwrap_or(a.len())..];
        let b = &b[b.iter().position(|&d| d != 0).unwrap_or(b.len())..];
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }

    pub fn is_zero(&self) -> bool {
        self.digits.iter().all(|&d| d == 0)
    }

    pub fn add(&self, other: &Dec) -> Dec {
        let scale = self.scale.max(other.scale);
        let (a, b) = (self.with_scale(scale), other.with_scale(scale));
        let (neg, digits) = if self.neg == other.neg {
            (self.neg, add_mag(&a, &b))
        } else {
            match Dec::cmp_magnitude(&a, &b) {
                Ordering::Less => (other.neg, sub_mag(&b, &a)),
                _ => (self.neg, sub_mag(&a, &b)),
            }
        };
        let mut d = Dec { neg, digits, scale };
        d.normalize();
        d
    }

    pub fn neg(&self) -> Dec {
        let mut d = self.clone();
        d.neg = !d.neg;
        d.normalize();
        d
    }

    /// `self / n`, rounded half away from zero to `scale` decimals (as MySQL does).
    pub fn div_u64(&self, n: u64, scale: usize) -> Option<Dec> {
        if n == 0 {
            return None;
        }
        // Quotient digits with one extra for rounding.
        let mut num = self.digits.clone();
        let want = scale + 1;
        if want >= self.scale {
            num.resize(num.len() + (want - self.scale), 0);
        } else {
            num.truncate(num.len() - (self.scale - want));
        }
        let mut q = Vec::with_capacity(num.len());
        let mut rem: u128 = 0;
        for d in num {
            rem = rem * 10 + u128::from(d);
            q.push((rem / u128::from(n)) as u8);
            rem %= u128::from(n);
        }
        let round_up = q.pop().unwrap_or(0) >= 5;
        if q.is_empty() {
            q.push(0);
        }
        let mut d = Dec { neg: self.neg, digits: q, scale };
        if round_up {
            let one = Dec { neg: self.neg, digits: vec![1], scale };
            d = d.add(&one);
        }
        // The truncated digits may have left too few for the scale.
        if d.digits.len() <= d.scale {
            let pad = d.scale + 1 - d.digits.len();
            d.digits.splice(0..0, std::iter::repeat_n(0, pad));
        }
        d.normalize();
        Some(d)
    }

    /// MySQL's text form with exactly `scale` decimals (its own when `None`).
    pub fn format(&self, scale: Option<usize>) -> String {
        let scale = scale.unwrap_or(self.scale);
        let mut digits = self.with_scale(scale);
        if scale < self.scale {
            digits.truncate(digits.len() - (self.scale - scale));
        }
        while digits.len() <= scale {
            digits.insert(0, 0);
        }
        let mut s = String::with_capacity(digits.len() + 2);
        if self.neg && digits.iter().any(|&d| d != 0) {
            s.push('-');
        }
        let int_len = digits.len() - scale;
        let first = digits[..int_len - 1].iter().position(|&d| d != 0).unwrap_or(int_len - 1);
        for &d in &digits[first..int_len] {
            s.push((b'0' + d) as char);
        }
        if scale > 0 {
            s.push('.');
            for &d in &digits[int_len..] {
                s.push((b'0' + d) as char);
            }
        }
        s
    }

    pub fn to_f64(&self) -> f64 {
        self.format(None).parse().unwrap_or(f64::NAN)
    }
}

impl Ord for Dec {
    fn cmp(&self, other: &Dec) -> Ordering {
        match (self.neg, other.neg) {
            (false, true) => return Ordering::Greater,
            (true, false) => return Ordering::Less,
            _ => {}
        }
        let scale = self.scale.max(other.scale);
        let m = Dec::cmp_magnitude(&self.with_scale(scale), &other.with_scale(scale));
        if self.neg {
            m.reverse()
        } else {
            m
        }
    }
}

impl PartialOrd for Dec {
    fn partial_cmp(&self, other: &Dec) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn add_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let n = a.len().max(b.len()) + 1;
    let mut out = vec![0u8; n];
    let mut carry = 0;
    for i in 0..n {
        let x = if i < a.len() { a[a.len() - 1 - i] } else { 0 };
        let y = if i < b.len() { b[b.len() - 1 - i] } else { 0 };
        let s = x + y + carry;
        out[n - 1 - i] = s % 10;
        carry = s / 10;
    }
    out
}

/// `a - b` for `a >= b` in magnitude.
fn sub_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = 0i8;
    for i in 0..out.len() {
        let x = out[out.len() - 1 - i] as i8;
        let y = if i < b.len() { b[b.len() - 1 - i] as i8 } else { 0 };
        let mut d = x - y - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        let idx = out.len() - 1 - i;
        out[idx] = d as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Dec;

    fn d(s: &str) -> Dec {
        Dec::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn adds_with_signs_and_scales() {
        assert_eq!(d("1.50").add(&d("2.25")).format(None), "3.75");
        assert_eq!(d("-1.5").add(&d("2")).format(None), "0.5");
        assert_eq!(d("1.5").add(&d("-2")).format(None), "-0.5");
        assert_eq!(d("-1.5").add(&d("1.5")).format(None), "0.0");
        assert_eq!(d("999").add(&d("1")).format(None), "1000");
        let big = "99999999999999999999999999999999999999999999999999999999999999999";
        assert_eq!(d(big).add(&d("1")).format(None).len(), 66);
    }

    #[test]
    fn compares_numerically() {
        assert!(d("10") > d("9.99"));
        assert!(d("-10") < d("-9.99"));
        assert!(d("0.10") == d("0.1").add(&Dec::zero()) || d("0.10").cmp(&d("0.1")).is_eq());
        assert!(d("-0.00").cmp(&d("0")).is_eq());
        assert!(d("007") > d("6.5"));
    }

    #[test]
    fn divides_and_rounds_half_away_from_zero() {
        assert_eq!(d("10").div_u64(4, 4).unwrap().format(Some(4)), "2.5000");
        assert_eq!(d("2").div_u64(3, 4).unwrap().format(Some(4)), "0.6667");
        assert_eq!(d("-2").div_u64(3, 4).unwrap().format(Some(4)), "-0.6667");
        assert_eq!(d("1.25").div_u64(1, 1).unwrap().format(Some(1)), "1.3");
        assert_eq!(d("0.00005").div_u64(1, 4).unwrap().format(Some(4)), "0.0001");
        assert_eq!(d("12345.67").div_u64(7, 6).unwrap().format(Some(6)), "1763.667143");
        assert!(d("1").div_u64(0, 4).is_none());
    }

    #[test]
    fn formats_like_mysql() {
        assert_eq!(d("0.5").format(Some(2)), "0.50");
        assert_eq!(d("-0.5").format(Some(0)), "0");
        assert_eq!(d("000").format(None), "0");
        assert!(Dec::parse(b"1e5").is_none());
        assert!(Dec::parse(b"").is_none());
    }
}
