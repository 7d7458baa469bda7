-- As SQLite's 016: the format a wave's files are written in.
ALTER TABLE waves ADD COLUMN format TEXT COLLATE "C" NOT NULL DEFAULT 'pdf';
