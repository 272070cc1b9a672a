%% Savina fork-join throughput for Erlang: main sends N messages to each of
%% A workers (round by round); each message costs a little arithmetic; a
%% worker that got N tells the sink, the sink tells main when all A are done.
%% Usage: fjthrput REPS A N. Counts A*N messages per rep.
-module(fjthrput).
-export([main/1]).

main(Args) ->
    [Reps, A, N] = bench_util:ints(Args),
    S = bench_util:median_secs(Reps, fun() -> rep(A, N) end),
    bench_util:report(fjthrput, A * N / S, "msgs/s"),
    halt().

rep(A, N) ->
    Main = self(),
    Sink = spawn(fun() -> sink(Main, A) end),
    Workers = [spawn(fun() -> worker(Sink, N, 0, 0.0) end) || _ <- lists:seq(1, A)],
    S = bench_util:time_secs(fun() ->
        send_rounds(Workers, N),
        receive done -> ok end
    end),
    [exit(W, kill) || W <- Workers],
    S.

send_rounds(_, 0) -> ok;
send_rounds(Workers, I) ->
    [W ! work || W <- Workers],
    send_rounds(Workers, I - 1).

worker(Sink, N, Count, Acc) ->
    receive
        work ->
            X = math:sin(37.2 + Count),
            Acc2 = Acc + X * X,
            case Count + 1 of
                N -> Sink ! {done, Acc2};
                C -> worker(Sink, N, C, Acc2)
            end
    end.

sink(Main, 0) -> Main ! done;
sink(Main, Left) -> receive {done, _} -> sink(Main, Left - 1) end.
