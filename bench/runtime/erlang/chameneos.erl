%% Savina chameneos for Erlang: C chameneos meet through a mall N times.
%% A chameneo sends {meet, Color, Self} to the mall; the mall parks the
%% first and forwards the second's meet to it; the parked one takes the
%% complement color, sends {change, Color} to the other, and both go back to
%% the mall. After N meetings the mall answers meets with exit; each
%% chameneo then reports done and stops; the mall tells main once all C
%% reported. Usage: chameneos REPS C N. Counts 4N messages per rep.
-module(chameneos).
-export([main/1]).

main(Args) ->
    [Reps, C, N] = bench_util:ints(Args),
    S = bench_util:median_secs(Reps, fun() -> rep(C, N) end),
    bench_util:report(chameneos, 4 * N / S, "msgs/s"),
    halt().

rep(C, N) ->
    Main = self(),
    Mall = spawn(fun() -> mall(Main, N, C, none, 0, 2 * N) end),
    Chams = [spawn(fun() -> cham(Mall, I rem 3, 0) end) || I <- lists:seq(0, C - 1)],
    bench_util:time_secs(fun() ->
        [X ! start || X <- Chams],
        receive done -> ok end
    end).

complement(A, A) -> A;
complement(A, B) -> 3 - A - B.

%% Total: meetings the chameneos reported; each meeting counts twice.
mall(Main, _Left, 0, _Waiting, Total, Want) ->
    Total =:= Want orelse
        io:format(standard_error, "chameneos: ~B meetings, want ~B~n", [Total, Want]),
    Main ! done;
mall(Main, Left, Live, Waiting, Total, Want) ->
    receive
        {meet, _Color, Who} when Left =:= 0 ->
            Who ! exit, mall(Main, 0, Live, Waiting, Total, Want);
        {meet, Color, Who} when Waiting =:= none ->
            mall(Main, Left, Live, {Who, Color}, Total, Want);
        {meet, Color, Who} ->
            {Parked, _} = Waiting,
            Parked ! {meet, Color, Who},
            mall(Main, Left - 1, Live, none, Total, Want);
        {done, Meetings} ->
            mall(Main, Left, Live - 1, Waiting, Total + Meetings, Want)
    end.

cham(Mall, Color, Meetings) ->
    receive
        start ->
            Mall ! {meet, Color, self()}, cham(Mall, Color, Meetings);
        {meet, OtherColor, Other} ->
            New = complement(Color, OtherColor),
            Other ! {change, New},
            Mall ! {meet, New, self()},
            cham(Mall, New, Meetings + 1);
        {change, New} ->
            Mall ! {meet, New, self()},
            cham(Mall, New, Meetings + 1);
        exit ->
            Mall ! {done, Meetings}
    end.
