-- The extension is installed (pg_regress --load-extension) and preloaded.
SELECT extname, extversion FROM pg_extension WHERE extname = 'camembert';
SELECT camembert_version();

-- GUCs and their defaults
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'camembert.%' ORDER BY name;

-- bounds are enforced
SET camembert.threads = 0;
SET camembert.threads = 65;
SET camembert.threads = 2;
SHOW camembert.threads;
RESET camembert.threads;

-- the prefix is reserved: a typo is an error, not a silent placeholder
SET camembert.thread = 2;

-- only superusers may confine or widen the model directory
CREATE ROLE camembert_plain_user;
SET ROLE camembert_plain_user;
SET camembert.model_dir = '/';
RESET ROLE;
DROP ROLE camembert_plain_user;
