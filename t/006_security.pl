# Security and transactional safety of the registry (issue [9] items 1-4, 11):
#  - hostile objects first in search_path never run as another role;
#  - a NULL model argument loads nothing just to count candidates;
#  - camembert.threads is capped by camembert.max_threads, threads block signals;
#  - PREPARE TRANSACTION with a pending load/unload is refused; savepoints and
#    failed PL/pgSQL blocks take an unload back;
#  - parallel workers use exactly the leader's model.
use strict;
use warnings;
use Cwd qw(abs_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path($ENV{CAMEMBERT_ROOT} // '.');
# the golden model directories, whole: assembled in build/golden from test/golden
system('sh', "$root/test/golden/assemble.sh") == 0 or BAIL_OUT("test/golden/assemble.sh failed");
my $golden = "$root/build/golden/models";

my $node = PostgreSQL::Test::Cluster->new('security');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'camembert'
max_prepared_transactions = 4
restart_after_crash = on
camembert.max_models = 4
# this test checks the lazy reload after a restart: no preload worker (t/008_preload.pl)
camembert.preload = off
});
$node->start;

$node->safe_psql('postgres', qq{
	CREATE EXTENSION camembert;
	SELECT camembert_load('cls', '$golden/cls3');
	CREATE ROLE mallory LOGIN;
	CREATE ROLE loader LOGIN IN ROLE pg_read_server_files;
	GRANT CREATE ON DATABASE postgres TO mallory, loader;
	-- where hostile code records who ran it
	CREATE TABLE public.ran_as (who name, what text);
	GRANT INSERT, SELECT ON public.ran_as TO PUBLIC;
});

# Hostile objects a role puts in its own schema: every one logs the role it runs
# as and, if that role is a superuser, tries to make its author one.
sub hostile_schema
{
	my ($role) = @_;
	my $s = "evil_$role";
	return qq{
	CREATE SCHEMA $s;
	CREATE FUNCTION $s.log(what text) RETURNS void LANGUAGE plpgsql AS \$\$
	BEGIN
		INSERT INTO public.ran_as VALUES (current_user, what);
		IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
			EXECUTE 'ALTER ROLE $role SUPERUSER';
		END IF;
	END \$\$;
	CREATE FUNCTION $s.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS \$\$
	BEGIN PERFORM $s.log('='); RETURN pg_catalog.texteq(a, b); END \$\$;
	CREATE OPERATOR $s.= (LEFTARG = text, RIGHTARG = text, FUNCTION = $s.texteq);
	CREATE FUNCTION $s.now() RETURNS timestamptz LANGUAGE plpgsql AS \$\$
	BEGIN PERFORM $s.log('now'); RETURN pg_catalog.now(); END \$\$;
	CREATE FUNCTION $s.coalesce(a text, b text) RETURNS text LANGUAGE plpgsql AS \$\$
	BEGIN PERFORM $s.log('coalesce'); RETURN pg_catalog.concat(a, b); END \$\$;
	CREATE FUNCTION $s.textlt(a text, b text) RETURNS boolean LANGUAGE plpgsql AS \$\$
	BEGIN PERFORM $s.log('<'); RETURN pg_catalog.text_lt(a, b); END \$\$;
	CREATE OPERATOR $s.< (LEFTARG = text, RIGHTARG = text, FUNCTION = $s.textlt);
	CREATE FUNCTION $s.octet_length(a text) RETURNS integer LANGUAGE plpgsql AS \$\$
	BEGIN PERFORM $s.log('octet_length'); RETURN pg_catalog.octet_length(a); END \$\$;
	CREATE FUNCTION $s.text(a name) RETURNS text LANGUAGE plpgsql AS \$\$
	BEGIN PERFORM $s.log('text(name)'); RETURN a::pg_catalog.text; END \$\$;
	SET search_path = $s, pg_catalog, public;
	};
}

# Every function of the extension, from a session whose search_path starts with
# the hostile schema.
my $calls = q{
	SELECT camembert_tokenize('x', 'no-such-model');
	SELECT camembert_tokenize('x');
	SELECT camembert_tokens('x', 'cls');
	SELECT camembert_decode('{5,6}', 'cls');
	SELECT camembert_token_count('x');
	SELECT camembert_logits('x', 'cls');
	SELECT camembert_hidden_states('x', 'cls');
	SELECT camembert_classify('x');
	SELECT camembert_classify('x', 'never-registered');
	SELECT * FROM camembert_classify_scores('x');
	SELECT * FROM camembert_classify(ARRAY['x', 'y']);
	SELECT camembert_embed('x');
	SELECT * FROM camembert_fill_mask('x <mask>');
	SELECT camembert_generate('x');
	SELECT camembert_generate('x', num_beams => 2, repetition_penalty => 1.2, no_repeat_ngram_size => 2);
	SELECT * FROM camembert_generate_sequences('x');
	SELECT camembert_score('x');
	SELECT camembert_loss('x', 'a');
	SELECT camembert_loss('x', 0, 'cls');
	SELECT camembert_loss('x', 0.5::float8);
	SELECT camembert_loss('x', ARRAY['a']);
	SELECT camembert_loss('x', ARRAY[0.5::float8]);
	SELECT camembert_mlm_loss('x <mask>', ARRAY['a']);
	SELECT camembert_mlm_loss('{5,8004,6}'::int[], '{-100,7,-100}'::int[]);
	SELECT camembert_attentions('x', 'cls');
	SELECT * FROM camembert_models();
	SELECT * FROM camembert_loaded_models();
	SELECT camembert_version();
	SELECT * FROM camembert_stat_models;
	SELECT camembert_stat_dropped();
	SELECT camembert_stat_reset();
};

# Each call on its own line: errors (no model of the kind, no privilege) are expected.
sub run_each
{
	my ($user, $setup, $sql) = @_;
	for my $stmt (grep { /\S/ } split /;\n/, $sql)
	{
		$node->psql('postgres', "$setup\n$stmt;", extra_params => [ '-U', $user ]);
	}
}

$node->safe_psql('postgres', hostile_schema('mallory'), extra_params => [ '-U', 'mallory' ]);
$node->safe_psql('postgres', hostile_schema('loader'), extra_params => [ '-U', 'loader' ]);

# an unprivileged role calls everything, including load and unload (refused)
run_each('mallory', "SET search_path = evil_mallory, pg_catalog, public;",
	$calls . qq{
	SELECT camembert_load('mine', '$golden/mlm');
	SELECT camembert_unload('cls');
});

# a pg_read_server_files member loads and unloads (allowed), and calls everything
run_each('loader', "SET search_path = evil_loader, pg_catalog, public;",
	$calls . qq{
	SELECT camembert_load('ldr', '$golden/mlm');
	SELECT camembert_unload('ldr');
	SELECT camembert_load('ldr', '$golden/mlm');
	SELECT camembert_unload('ldr');
	BEGIN; SELECT camembert_unload('cls'); ROLLBACK;
});

# a superuser with a hostile schema in its search_path (a trojan) lists the models
$node->psql('postgres', "SET search_path = evil_mallory, pg_catalog, public; SELECT * FROM camembert_models();");

my $others = $node->safe_psql('postgres',
	"SELECT coalesce(string_agg(DISTINCT who || ':' || what, ', '), 'none') FROM public.ran_as WHERE who NOT IN ('mallory', 'loader')");
is($others, 'none', 'no hostile function or operator ran as another role');
is($node->safe_psql('postgres', "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('mallory', 'loader') AND rolsuper"),
	'', 'mallory and loader are still not superusers');
# the hostile objects were reachable: the calls did run them as their own roles
# where the caller's own SQL resolved them (e.g. a query that calls now())
$node->safe_psql('postgres', "SELECT evil_mallory.log('probe')", extra_params => [ '-U', 'mallory' ]);
is($node->safe_psql('postgres', "SELECT count(*) FROM public.ran_as WHERE who = 'mallory' AND what = 'probe'"),
	'1', 'the hostile functions do run (as their caller) when called directly');
is($node->safe_psql('postgres', "SELECT count(*) FROM camembert_registered_models WHERE name = 'ldr'"),
	'0', 'loader loaded and unloaded through the hardened catalog access');
is($node->safe_psql('postgres', "SELECT count(*) FROM camembert_loaded_models() WHERE name = 'cls'"),
	'1', 'the rolled-back unload left cls loaded');

# functions of the install script that run SQL pin their search_path
is($node->safe_psql('postgres', q{
	SELECT string_agg(p.proname, ',') FROM pg_proc p
	  JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
	  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'camembert'
	 WHERE p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
	   AND NOT coalesce(p.proconfig::text LIKE '%search_path=pg_catalog, pg_temp%', false)}),
	'', 'every SQL-language function of the extension sets search_path');

# --- a NULL model argument loads nothing just to count candidates ------------------
$node->safe_psql('postgres', qq{
	SELECT camembert_load('mlm', '$golden/mlm');
	SELECT camembert_load('clm', '$golden/clm');
	SELECT camembert_load('multi', '$golden/multilabel');
});
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM camembert_loaded_models()'), '0',
	'after a restart nothing is loaded');
is($node->safe_psql('postgres', "SELECT count(*) FROM camembert_fill_mask('Le <mask>.')", extra_params => [ '-U', 'mallory' ]),
	'5', 'a NULL model resolves to the one registered masked LM');
is($node->safe_psql('postgres', 'SELECT string_agg(name, \',\' ORDER BY name) FROM camembert_loaded_models()'), 'mlm',
	'only that model was loaded to answer');
my ($rc, $out, $err) = $node->psql('postgres', "SELECT camembert_classify('x')", extra_params => [ '-U', 'mallory' ]);
like($err, qr/2 models can classify text.*: cls, multi/, 'two registered classifiers: the ERROR lists them');
is($node->safe_psql('postgres', 'SELECT string_agg(name, \',\' ORDER BY name) FROM camembert_loaded_models()'), 'mlm',
	'and neither was loaded to count them');
$node->psql('postgres', "SELECT string_agg(name || '=' || architecture, ',' ORDER BY name) FROM camembert_registered_models",
	stdout => \my $archs);
is($archs,
	'clm=CamembertForCausalLM,cls=CamembertForSequenceClassification,mlm=CamembertForMaskedLM,multi=CamembertForSequenceClassification',
	'registrations record the architecture');

# --- camembert.threads is capped, and every thread blocks signals -----------------
# (the number of cores when the setting does not exist, as before it did)
my $max = $node->safe_psql('postgres', "SELECT coalesce(current_setting('camembert.max_threads', true), '2')");
cmp_ok($max, '>=', 1, "camembert.max_threads defaults to the cores ($max)");
$node->safe_psql('postgres', "SELECT camembert_unload('clm'), camembert_unload('multi')");
$node->safe_psql('postgres', "SELECT camembert_load('fr', '$root/models/fr-mlm')");
my $long = 'Le chat dort sur le canapé de la maison. ' x 40;
my $probe = $node->background_psql('postgres', extra_params => [ '-U', 'mallory' ]);
my $pid = $probe->query_safe("SET camembert.threads = 64; SELECT sum(array_length(camembert_logits('$long', 'fr'), 1)) > 0 FROM generate_series(1, 3); SELECT pg_backend_pid();");
($pid) = $pid =~ /(\d+)\s*$/;
my @tasks = glob("/proc/$pid/task/*");
cmp_ok(scalar(@tasks), '<=', $max, sprintf('camembert.threads = 64 runs at most max_threads threads (%d)', scalar(@tasks)));
cmp_ok(scalar(@tasks), '>', 1, 'the forward pass did use helper threads') if $max > 1;
my $unblocked = 0;
for my $task (@tasks)
{
	next if $task =~ m{/$pid$};
	my ($blk) = slurp_file("$task/status") =~ /^SigBlk:\s*([0-9a-f]+)/m;
	my $mask = hex(substr($blk, -8));
	# SIGHUP 1, SIGINT 2, SIGQUIT 3, SIGUSR1 10, SIGUSR2 12, SIGALRM 14, SIGTERM 15
	for my $sig (1, 2, 3, 10, 12, 14, 15)
	{
		$unblocked++ unless $mask & (1 << ($sig - 1));
	}
}
is($unblocked, 0, 'every helper thread blocks the signals PostgreSQL handles');
is($probe->query_safe("SET camembert.threads = 1; SELECT array_length(camembert_logits('$long', 'fr'), 1) > 0"), 't',
	'the backend still works');
$probe->quit;

# --- PREPARE TRANSACTION with a pending load or unload is refused --------------------
($rc, $out, $err) = $node->psql('postgres', q{
	BEGIN; SELECT camembert_unload('cls'); PREPARE TRANSACTION 'p1';
	SELECT 'after';
}, on_error_stop => 0);
like($err, qr/cannot PREPARE a transaction that has loaded or unloaded a camembert model/, 'PREPARE after an unload: ERROR');
like($out, qr/after/, 'the session goes on');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0', 'nothing was prepared');
is($node->safe_psql('postgres', "SELECT count(*) FROM camembert_registered_models WHERE name = 'cls'"), '1',
	'cls is still registered');
($rc, $out, $err) = $node->psql('postgres', qq{
	BEGIN; SELECT camembert_load('p2', '$golden/mlm'); PREPARE TRANSACTION 'p2';
});
like($err, qr/cannot PREPARE a transaction/, 'PREPARE after a load: ERROR');
($rc, $out, $err) = $node->psql('postgres', q{
	BEGIN; SELECT count(*) FROM camembert_registered_models; PREPARE TRANSACTION 'p3'; COMMIT PREPARED 'p3';
	SELECT 'fine';
});
like($out, qr/fine/, 'a transaction that only used the extension can be prepared');
# (where a PREPARE went through, its locks would block the tests below)
for my $gid (split /\n/, $node->safe_psql('postgres', 'SELECT gid FROM pg_prepared_xacts'))
{
	$node->psql('postgres', "ROLLBACK PREPARED '$gid'");
}
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');

# --- savepoints and failed PL/pgSQL blocks take an unload back -----------------------
sub loaded
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM camembert_loaded_models() WHERE name = '$name'");
}
$node->safe_psql('postgres', "SELECT camembert_tokenize('x', 'cls')");
is(loaded('cls'), '1', 'cls is loaded');
$node->safe_psql('postgres', q{
	BEGIN; SAVEPOINT s; SELECT camembert_unload('cls'); ROLLBACK TO s; COMMIT;
});
is(loaded('cls'), '1', 'an unload rolled back to a savepoint does not free the model at commit');
$node->safe_psql('postgres', q{
	DO $$ BEGIN
		BEGIN
			PERFORM camembert_unload('cls');
			RAISE EXCEPTION 'fails';
		EXCEPTION WHEN OTHERS THEN NULL;
		END;
	END $$;
});
is(loaded('cls'), '1', 'an unload in a failed PL/pgSQL block does not free the model');
$node->safe_psql('postgres', qq{
	BEGIN; SELECT camembert_unload('cls'); SAVEPOINT s; SELECT camembert_load('cls', '$golden/cls3'); ROLLBACK TO s; COMMIT;
});
is(loaded('cls') . $node->safe_psql('postgres', "SELECT count(*) FROM camembert_registered_models WHERE name = 'cls'"),
	'00', 'unload, then a load rolled back: unloaded and unregistered');
$node->safe_psql('postgres', qq{
	SELECT camembert_load('cls', '$golden/cls3');
	BEGIN; SAVEPOINT s; SELECT camembert_unload('cls'); RELEASE s; COMMIT;
});
is(loaded('cls'), '0', 'an unload in a released savepoint frees the model at commit');

# --- parallel workers use exactly the leader's model ------------------------------
$node->safe_psql('postgres', qq{
	SELECT camembert_load('m', '$golden/cls3');
	CREATE TABLE posts AS SELECT i, 'Le texte numéro ' || i || ' parle de sport et de politique.' AS body
	  FROM generate_series(1, 400) i;
	ANALYZE posts;
});
my $parallel = q{
	SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
	SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
};
my $expected = $node->safe_psql('postgres',
	"SELECT string_agg(l || ':' || n, ',' ORDER BY l) FROM (SELECT camembert_classify(body, 'm') l, count(*) n FROM posts GROUP BY 1) s");
my $leader = $node->background_psql('postgres');
$leader->query_safe($parallel);
$leader->query_safe("BEGIN; SELECT camembert_classify('x', 'm');");
# another session reloads the name from another model meanwhile
$node->safe_psql('postgres', "SELECT camembert_unload('m')");
$node->safe_psql('postgres', "SELECT camembert_load('m', '$golden/multilabel')");
my $plan = $leader->query_safe(
	"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT camembert_classify(body, 'm') FROM posts");
like($plan, qr/Workers Launched: [12]/, 'the query runs in parallel workers');
my $got = $leader->query_safe(
	"SELECT string_agg(l || ':' || n, ',' ORDER BY l) FROM (SELECT camembert_classify(body, 'm') l, count(*) n FROM posts GROUP BY 1) s");
is($got, $expected, "workers classify with the leader's model, not the reloaded one");
$leader->query_safe('COMMIT');
like($leader->query_safe("SELECT string_agg(DISTINCT camembert_classify(body, 'm'), ',') FROM posts"),
	qr/^(politique|sport|culture|economie)(,(politique|sport|culture|economie))*$/,
	'the next transaction uses the reloaded model, in the workers too');
$leader->quit;

# --- ALTER EXTENSION camembert UPDATE from the released 0.1 --------------------------
# (a name loaded already from the same path: registering it loads nothing more)
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', "CREATE EXTENSION camembert VERSION '0.1'; SELECT camembert_load('mlm', '$golden/mlm')");
$node->safe_psql('old', 'ALTER EXTENSION camembert UPDATE');
is($node->safe_psql('old', "SELECT extversion FROM pg_extension WHERE extname = 'camembert'"), '0.4', 'updated to 0.4');
is($node->safe_psql('old', 'SELECT name, path IS NOT NULL, architecture IS NULL, dtype FROM camembert_registered_models'), 'mlm|t|t|auto',
	'the 0.1 registration is kept, without an architecture, with dtype auto');
is($node->safe_psql('old', "SELECT architecture, loaded FROM camembert_models() WHERE name = 'mlm'"), 'CamembertForMaskedLM|t',
	'camembert_models() after the update');
$node->safe_psql('old', "SELECT camembert_load('mlm', '$golden/mlm')");
is($node->safe_psql('old', 'SELECT architecture FROM camembert_registered_models'), 'CamembertForMaskedLM',
	'loading again records the architecture');
is($node->safe_psql('old', q{SELECT count(*) FROM pg_proc WHERE proname = 'camembert_models'
	AND array_to_string(proconfig, ',') = 'search_path=pg_catalog, pg_temp'}), '1',
	'the updated camembert_models() pins its search_path');

# --- each load and unload is logged: name, path, architecture, dtypes, bytes, milliseconds
my $log = slurp_file($node->logfile);
like($log, qr{LOG:  camembert: loaded model "cls" from "\Q$golden\E/cls3" \(CamembertForSequenceClassification, float32 weights, dtype auto, \d+ bytes of shared memory\) in [\d.]+ ms},
	'a load is logged with name, path, architecture, files\' dtype, dtype asked, bytes and time');
like($log, qr{LOG:  camembert: unloaded model "m" \(from "\Q$golden\E/cls3", \d+ bytes of shared memory},
	'an unload is logged with name, path and bytes');

$node->stop;
done_testing();
