SELECT abs(-1), coalesce(NULL, 2), ifnull(NULL, 3), iif(1, 'y', 'n'), instr('abc', 'b'), hex(x'0a'),
  length('abc'), lower('A'), ltrim(' a'), max(1, 2), min(1, 2), nullif(1, 1), printf('%d', 5),
  format('%s', 'x'), quote('a'), replace('aa', 'a', 'b'), round(1.55, 1), rtrim('a '), sign(-2),
  substr('abc', 2), substring('abc', 1, 1), trim(' a '), typeof(1), unicode('A'), upper('a'),
  zeroblob(2), char(65), likely(1), unlikely(0), likelihood(1, 0.5), sqlite_version();