%% Savina thread ring for Erlang: A processes in a ring pass one token H
%% times (each hop decrements it; the process that sees 0 reports done).
%% Usage: threadring REPS A H. Counts H+1 messages per rep.
-module(threadring).
-export([main/1]).

main(Args) ->
    [Reps, A, H] = bench_util:ints(Args),
    S = bench_util:median_secs(Reps, fun() -> rep(A, H) end),
    bench_util:report(threadring, (H + 1) / S, "msgs/s"),
    halt().

rep(A, H) ->
    Main = self(),
    Ring = [spawn(fun() -> node(Main, none) end) || _ <- lists:seq(1, A)],
    Nexts = tl(Ring) ++ [hd(Ring)],
    [P ! {next, Nx} || {P, Nx} <- lists:zip(Ring, Nexts)],
    S = bench_util:time_secs(fun() ->
        hd(Ring) ! {token, H},
        receive done -> ok end
    end),
    [exit(P, kill) || P <- Ring],
    S.

node(Main, Next) ->
    receive
        {next, Nx} -> node(Main, Nx);
        {token, 0} -> Main ! done, node(Main, Next);
        {token, Hops} -> Next ! {token, Hops - 1}, node(Main, Next)
    end.
