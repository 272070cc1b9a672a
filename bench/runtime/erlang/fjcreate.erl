%% Savina fork-join creation for Erlang: main spawns N workers and sends
%% each one message; a worker does a little arithmetic, tells the sink and
%% stops; the sink tells main when all N are done.
%% Usage: fjcreate REPS N. Counts N (spawn + message) per rep.
-module(fjcreate).
-export([main/1]).

main(Args) ->
    [Reps, N] = bench_util:ints(Args),
    S = bench_util:median_secs(Reps, fun() -> rep(N) end),
    bench_util:report(fjcreate, N / S, "msgs/s"),
    halt().

rep(N) ->
    Main = self(),
    Sink = spawn(fun() -> sink(Main, N) end),
    bench_util:time_secs(fun() ->
        spawn_all(Sink, 0, N),
        receive done -> ok end
    end).

spawn_all(_, N, N) -> ok;
spawn_all(Sink, I, N) ->
    W = spawn(fun() -> worker(Sink) end),
    W ! {work, I},
    spawn_all(Sink, I + 1, N).

worker(Sink) ->
    receive {work, I} -> X = math:sin(37.2 + I), Sink ! {done, X * X} end.

sink(Main, 0) -> Main ! done;
sink(Main, Left) -> receive {done, _} -> sink(Main, Left - 1) end.
