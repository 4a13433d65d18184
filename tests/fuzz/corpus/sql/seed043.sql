SELECT CAST(a AS TEXT), CAST('1.5' AS REAL), b LIKE 'o%' ESCAPE '\', b GLOB 'o*', b NOT LIKE 'x',
  (a, b) = (1, 'one'), (a, b) IN (SELECT x, y FROM t2), a IN (1, 2), a NOT IN (), EXISTS (SELECT 1), NOT a ISNULL,
  a NOTNULL, a NOT NULL, ~a, -a, +a, a << 2 >> 1 & 3 | 4, a % 2, 'a' || 'b', a == 1, a <> 2, a != 3
  FROM t1;