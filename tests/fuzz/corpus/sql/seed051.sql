SELECT 1 /* a comment */ -- another
  + 2;