SELECT date('now'), time('now', 'localtime'), datetime(), julianday('NOW'), unixepoch(), strftime('%s'),
  strftime('%Y', 'now'), date('2020-01-01', '+1 day'), CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP,
  random(), randomblob(4);