%% Savina ping-pong for Erlang: two processes bounce one message N times.
%% Usage: pingpong REPS N. Counts 2N messages (ping + pong) per rep.
-module(pingpong).
-export([main/1]).

main(Args) ->
    [Reps, N] = bench_util:ints(Args),
    S = bench_util:median_secs(Reps, fun() -> rep(N) end),
    bench_util:report(pingpong, 2 * N / S, "msgs/s"),
    halt().

rep(N) ->
    Main = self(),
    Pong = spawn(fun pong/0),
    Ping = spawn(fun() -> ping(Pong, Main, N) end),
    S = bench_util:time_secs(fun() ->
        Ping ! start,
        receive done -> ok end
    end),
    exit(Ping, kill),
    exit(Pong, kill),
    S.

pong() ->
    receive {ping, From} -> From ! pong, pong() end.

ping(Pong, Main, Left) ->
    receive
        start -> Pong ! {ping, self()}, ping(Pong, Main, Left);
        pong when Left > 1 -> Pong ! {ping, self()}, ping(Pong, Main, Left - 1);
        pong -> Main ! done, ping(Pong, Main, 0)
    end.
