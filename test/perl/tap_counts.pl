#!/usr/bin/perl
# Reads the output of prove or pg_prove (TAP::Harness's console summary) on
# stdin and prints "PASSED FAILED", counted in assertions:
#   - passed: assertions the harness counted ("Files=N, Tests=M") minus the
#     failed ones listed in its "Test Summary Report";
#   - failed: failed assertions, plus the planned assertions a file never
#     ran ("Bad plan. You planned 5 tests but ran 3" adds 2), plus one for a
#     file reported as a problem for any other reason (died, non-zero exit);
#   - no harness summary at all means the harness itself broke: "0 1".
use strict;
use warnings;

my ($tests, $listed_failed, $failed) = (0, 0, 0);
my ($in_report, $seen_summary, $open_problem) = (0, 0, 0);

sub close_block {
	$failed += 1 if $open_problem;
	$open_problem = 0;
}

while (my $line = <STDIN>) {
	$in_report = 1 if $line =~ /^Test Summary Report/;
	if ($in_report && $line =~ /\(Wstat: .*Tests: (\d+) Failed: (\d+)\)\s*$/) {
		close_block();
		$listed_failed += $2;
		$failed += $2;
		$open_problem = ($2 == 0);
	}
	elsif ($in_report && $line =~ /You planned (\d+) tests? but ran (\d+)/) {
		if ($1 > $2) {
			$failed += $1 - $2;
			$open_problem = 0;
		}
	}
	elsif ($line =~ /^Files=(\d+), Tests=(\d+),/) {
		close_block();
		$in_report = 0;
		$tests += $2;
		$seen_summary = 1;
	}
}
close_block();
if (!$seen_summary) {
	print "0 1\n";
	exit 0;
}
my $passed = $tests - $listed_failed;
$passed = 0 if $passed < 0;
print "$passed $failed\n";
