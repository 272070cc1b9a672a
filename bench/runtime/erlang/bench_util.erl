%% Shared helpers for the Erlang Savina programs: argument parsing, timing a
%% rep, the median of reps, and the "RESULT name value unit" line that
%% compare.sh reads (the same line the C and CAF programs print).
-module(bench_util).
-export([ints/1, median_secs/2, time_secs/1, report/3, rss_bytes/0]).

ints(Args) -> [list_to_integer(A) || A <- Args].

%% Runs Fun() Reps times (Fun returns the seconds its timed part took),
%% lists the times on stderr and returns the median.
median_secs(Reps, Fun) ->
    Secs = lists:sort([Fun() || _ <- lists:seq(1, Reps)]),
    io:format(standard_error, "reps (s):~s~n", [[io_lib:format(" ~.4f", [S]) || S <- Secs]]),
    lists:nth(Reps div 2 + 1, Secs).

%% Seconds taken by Fun().
time_secs(Fun) ->
    T0 = erlang:monotonic_time(nanosecond),
    Fun(),
    (erlang:monotonic_time(nanosecond) - T0) / 1.0e9.

report(Name, Value, Unit) ->
    io:format("RESULT ~s ~B ~s~n", [Name, round(Value), Unit]).

%% Resident bytes of this VM, from /proc/self/statm (pages * 4096).
rss_bytes() ->
    {ok, Bin} = file:read_file("/proc/self/statm"),
    [_Size, Resident | _] = string:lexemes(binary_to_list(Bin), " \n"),
    list_to_integer(Resident) * 4096.
