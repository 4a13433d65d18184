SELECT * FROM;
SELECT 1 +;
/* open comment;