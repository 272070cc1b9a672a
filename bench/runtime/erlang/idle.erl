%% Idle processes for Erlang: spawns N processes that wait for a message,
%% then round-trips one ping to the last one. Prints the spawn rate (N /
%% time of spawns + that ping) and the RSS growth per process (resident
%% pages from /proc/self/statm, after minus before, / N).
%% Usage: idle N (run the VM with +P above N).
-module(idle).
-export([main/1]).

main(Args) ->
    [N] = bench_util:ints(Args),
    Before = bench_util:rss_bytes(),
    Self = self(),
    S = bench_util:time_secs(fun() ->
        Last = spawn_n(N, none),
        Last ! {ping, Self},
        receive pong -> ok end
    end),
    After = bench_util:rss_bytes(),
    bench_util:report(spawn, N / S, "spawns/s"),
    bench_util:report(idle_bytes, (After - Before) / N, "bytes/actor"),
    halt().

spawn_n(0, Last) -> Last;
spawn_n(I, _) -> spawn_n(I - 1, spawn(fun idle/0)).

idle() -> receive {ping, From} -> From ! pong, idle() end.
