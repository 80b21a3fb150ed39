//! Plain text tables for people: left-aligned columns, two spaces apart, no trailing blanks.

/// Renders the table into `out`.
pub fn render(header: &[String], rows: &[Vec<String>], out: &mut String) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let mut out = String::new();
        super::render(
            &["A".into(), "BB".into(), "C".into()],
            &[vec!["xxx".into(), "y".into(), "".into()]],
            &mut out,
        );
        assert_eq!(out, "A    BB  C\nxxx  y\n");
    }
}
