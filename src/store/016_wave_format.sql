-- The format a wave's files are written in (pdf, zpl, tspl): an interrupted
-- wave is finished in the format it was planned in.
ALTER TABLE waves ADD COLUMN format TEXT NOT NULL DEFAULT 'pdf';
