SELECT '{"a":[1,2]}' -> '$.a', '{"a":[1,2]}' ->> '$.a[0]', json_extract('{"x":1}', '$.x'),
  json_group_array(a), json_object('k', b) FROM t1;