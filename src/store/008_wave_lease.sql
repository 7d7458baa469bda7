-- A wave is printed by one `station print` at a time: the one holding its lease.
-- The lease is taken when the wave is planned or resumed and renewed with every
-- chunk; a print that died lets it run out, and the next print resumes the wave.
ALTER TABLE waves ADD COLUMN lease_holder TEXT;
ALTER TABLE waves ADD COLUMN lease_until TEXT;
